// SPEC §10 activation through a spawned broker: calls wait for the started program, timeouts, the service's user.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../runtime/index.js';
import { cleanup, runCli, tempDir } from '../helpers/procs.js';
import { DIST, durableBroker } from './helpers.js';

test.after.each(() => cleanup());

function service(dir: string, name: string, body: Record<string, unknown>, script?: string): void {
  const sd = path.join(dir, 'services.d');
  fs.mkdirSync(sd, { recursive: true });
  if (script !== undefined) {
    const file = path.join(dir, `${name}.mjs`);
    fs.writeFileSync(file, script);
    fs.chmodSync(file, 0o644);
    body = { command: [process.execPath, file], ...body };
  }
  fs.writeFileSync(path.join(sd, `${name}.json`), JSON.stringify(body));
}

test('a call to a channel nobody listens to waits for the service it starts, and gets its reply', async () => {
  const dir = tempDir();
  service(dir, 'echo', { channel: 'svc/echo' }, `import { connect } from ${JSON.stringify(DIST)};
const c = await connect({ name: 'echo' });
c.listen('svc/echo', (m) => m.reply?.({ echoed: m.data, pid: process.pid, env: process.env.ECHO_MODE }));
`);
  // The env of the service file reaches the program.
  const sd = path.join(dir, 'services.d', 'echo.json');
  fs.writeFileSync(sd, JSON.stringify({ ...JSON.parse(fs.readFileSync(sd, 'utf8')), env: { ECHO_MODE: 'loud' } }));
  const broker = await durableBroker(dir, { servicesDir: path.join(dir, 'services.d') });
  const c = await connect({ socket: broker.socket });
  const r = (await c.call('svc/echo', 'echo(int)', 5, { timeoutMs: 20_000 })) as { echoed: number; pid: number; env: string };
  assert.equal([r.echoed, r.env], [5, 'loud']);
  // Running now: a second call goes straight to it.
  const again = (await c.call('svc/echo', 'echo(int)', 6, { timeoutMs: 20_000 })) as { pid: number };
  assert.is(again.pid, r.pid);
  const s = (await c.stats() as any).durable.activations;
  assert.is(s.started, 1);
  assert.is(s.failed, 0);
  process.kill(r.pid, 'SIGKILL');
  await c.close();
});

test('a deliver to a non-queued channel waits for the started program and counts it', async () => {
  const dir = tempDir();
  service(dir, 'sink', { channel: 'svc/sink' }, `import { connect } from ${JSON.stringify(DIST)};
const c = await connect({ name: 'sink' });
c.listen('svc/sink', (m) => { process.stdout.write(JSON.stringify({ sink: m.data }) + '\\n'); setTimeout(() => process.exit(0), 100); });
`);
  const broker = await durableBroker(dir, { servicesDir: path.join(dir, 'services.d') });
  const c = await connect({ socket: broker.socket });
  assert.is(await c.deliver('svc/sink', 'x(int)', 9), 1);
  const line = await broker.waitJson((v) => v.sink !== undefined, 20_000, 'the program got it');
  assert.is(line.sink, 9);
  await c.close();
});

test('a program that never listens: EACTIVATION after activationTimeoutMs, with its stderr; the queued message stays', async () => {
  const dir = tempDir();
  service(dir, 'mute', { channel: 'app/mute' }, `process.stderr.write('mute: waiting for a sensor\\n'); setInterval(() => {}, 1000);\n`);
  const broker = await durableBroker(dir, { queued: ['app/*'], servicesDir: path.join(dir, 'services.d'), activationTimeoutMs: 1500 });
  const r = await runCli(['call', '--socket', broker.socket, 'app/mute', 'x()', '--timeout', '20']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /EACTIVATION/);
  assert.match(r.stderr, /did not listen on app\/mute within 1500 ms/);
  assert.match(r.stderr, /waiting for a sensor/);
  const sent = await runCli(['send', '--socket', broker.socket, 'app/mute', 'y()']);
  assert.equal(JSON.parse(sent.stdout), { receivers: 0, queued: true });
});

test('a service with a user runs as that user when the broker is root; a killed program reports its signal', async () => {
  if (process.geteuid?.() !== 0) assert.unreachable('this test needs root: the broker starts the program as another user (sudo node scripts/test.mjs durable/activation)');
  const dir = tempDir();
  fs.chmodSync(dir, 0o755);
  service(dir, 'who', { channel: 'svc/who', user: 'nobody' }, `process.stderr.write('uid=' + process.getuid() + ' gid=' + process.getgid() + '\\n'); process.exit(4);\n`);
  service(dir, 'sig', { channel: 'svc/sig' }, `process.stderr.write('about to die\\n'); setTimeout(() => process.kill(process.pid, 'SIGSEGV'), 50);\n`);
  const broker = await durableBroker(dir, { servicesDir: path.join(dir, 'services.d') });
  const c = await connect({ socket: broker.socket });
  const nobody = Number(fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'))!.split(':')[2]);
  try {
    await c.call('svc/who', 'x()', undefined, { timeoutMs: 20_000 });
    assert.unreachable('answered');
  } catch (e) {
    assert.is((e as { code: string }).code, 'EACTIVATION');
    assert.match((e as Error).message, /status 4/);
    assert.match((e as Error).message, new RegExp(`uid=${nobody} `));
  }
  try {
    await c.call('svc/sig', 'x()', undefined, { timeoutMs: 20_000 });
    assert.unreachable('answered');
  } catch (e) {
    assert.is((e as { code: string }).code, 'EACTIVATION');
    assert.match((e as Error).message, /signal SIGSEGV/);
  }
  await c.close();
});

test('a service naming a systemd unit: systemctl start UNIT, its failure is EACTIVATION with its status and stderr', async () => {
  // A stand-in for systemctl first in the broker's PATH: `start ok.service` starts the program in the
  // background and exits 0 (as systemd does); any other unit fails as systemd says it.
  const dir = tempDir();
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const prog = path.join(dir, 'unit-prog.mjs');
  fs.writeFileSync(prog, `import { connect } from ${JSON.stringify(DIST)};
const c = await connect({ name: 'unit' });
c.listen('svc/unit', (m) => m.reply?.({ via: 'unit', pid: process.pid }));
`);
  fs.writeFileSync(path.join(bin, 'systemctl'), `#!/bin/sh
echo "$@" >> ${JSON.stringify(path.join(dir, 'systemctl.log'))}
if [ "$1" = start ] && [ "$2" = ok.service ]; then ${JSON.stringify(process.execPath)} ${JSON.stringify(prog)} >/dev/null 2>&1 & exit 0; fi
echo "Failed to start $2: Unit $2 not found." >&2
exit 5
`);
  fs.chmodSync(path.join(bin, 'systemctl'), 0o755);
  service(dir, 'ok', { channel: 'svc/unit', unit: 'ok.service' });
  service(dir, 'missing', { channel: 'svc/missing', unit: 'missing.service' });
  const broker = await durableBroker(dir, { servicesDir: path.join(dir, 'services.d') }, path.join(dir, 'qcop.sock'), { PATH: `${bin}:${process.env.PATH}` });
  const c = await connect({ socket: broker.socket });
  const r = (await c.call('svc/unit', 'x()', undefined, { timeoutMs: 20_000 })) as { via: string; pid: number };
  assert.is(r.via, 'unit');
  try {
    await c.call('svc/missing', 'x()', undefined, { timeoutMs: 20_000 });
    assert.unreachable('answered');
  } catch (e) {
    assert.is((e as { code: string }).code, 'EACTIVATION');
    assert.match((e as Error).message, /unit missing\.service/);
    assert.match((e as Error).message, /status 5/);
    assert.match((e as Error).message, /Unit missing\.service not found/);
  }
  assert.equal(fs.readFileSync(path.join(dir, 'systemctl.log'), 'utf8').trim().split('\n'), ['start ok.service', 'start missing.service']);
  process.kill(r.pid, 'SIGKILL');
  await c.close();
});

test('a service file others may write is refused', async () => {
  const dir = tempDir();
  service(dir, 'open', { channel: 'svc/open' }, `process.exit(0);\n`);
  fs.chmodSync(path.join(dir, 'services.d', 'open.json'), 0o666);
  const broker = await durableBroker(dir, { servicesDir: path.join(dir, 'services.d') });
  const r = await runCli(['call', '--socket', broker.socket, 'svc/open', 'x()', '--timeout', '5']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /ENOLISTENER/);
  assert.match(broker.stderr, /group or others may write it/);
});

test.run();
