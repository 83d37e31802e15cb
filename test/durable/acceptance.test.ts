// Durable delivery as a user would run it (docs/DURABLE.md): queued app/*, a service for app/hello, a broken one, a retained value.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { DIST, durableBroker } from './helpers.js';

test.after.each(() => cleanup());

/** A services folder: app/hello runs a script that listens and prints; app/broken writes to stderr and exits 3. */
function services(dir: string): string {
  const sd = path.join(dir, 'services.d');
  fs.mkdirSync(sd);
  const hello = path.join(dir, 'hello.mjs');
  fs.writeFileSync(hello, `import { connect } from ${JSON.stringify(DIST)};
const client = await connect({ name: 'hello' }); // QCOP_SOCKET comes from the broker
client.listen('app/hello', async (msg) => {
  process.stdout.write(JSON.stringify({ hello: msg.message, data: msg.data, pid: process.pid }) + '\\n');
  setTimeout(() => client.close().then(() => process.exit(0)), 50);
});
`);
  const broken = path.join(dir, 'broken.mjs');
  fs.writeFileSync(broken, `process.stderr.write('starting broken\\nbroken: cannot read /nonexistent/config\\n'); process.exit(3);\n`);
  fs.writeFileSync(path.join(sd, 'hello.json'), JSON.stringify({ channel: 'app/hello', command: [process.execPath, hello] }));
  fs.writeFileSync(path.join(sd, 'broken.json'), JSON.stringify({ channel: 'app/broken', command: [process.execPath, broken] }));
  return sd;
}

test('send to a queued channel starts its service, which prints the message', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'], servicesDir: services(dir) });
  const sent = await runCli(['send', '--socket', broker.socket, 'app/hello', 'greet()', '1']);
  assert.is(sent.code, 0, sent.stderr);
  const out = JSON.parse(sent.stdout);
  assert.ok(out.queued === true || out.receivers === 1, sent.stdout);
  const line = await broker.waitJson((v) => v.hello !== undefined, 20_000, 'the started program\'s line');
  assert.equal([line.hello, line.data], ['greet()', 1]);
  await waitFor(async () => JSON.parse((await runCli(['stats', '--socket', broker.socket])).stdout).durable.storedMessages === 0, 20_000, 'the message acknowledged');
  const stats = JSON.parse((await runCli(['stats', '--socket', broker.socket])).stdout);
  assert.ok(stats.durable.activations.started >= 1);
});

test('kill -9 of the broker between send and start loses nothing', async () => {
  const dir = tempDir();
  const sock = path.join(dir, 'qcop.sock');
  const sd = services(dir);
  // First without services: the message is stored, nobody starts.
  let broker = await durableBroker(dir, { queued: ['app/*'] }, sock);
  const sent = await runCli(['send', '--socket', sock, 'app/hello', 'greet()', '2']);
  assert.equal(JSON.parse(sent.stdout), { receivers: 0, queued: true });
  broker.kill('SIGKILL');
  await broker.exited;
  broker = await durableBroker(dir, { queued: ['app/*'], servicesDir: sd }, sock);
  // A stored message with nobody listening starts the service at once.
  const line = await broker.waitJson((v) => v.hello !== undefined, 20_000, 'the started program\'s line');
  assert.equal([line.hello, line.data], ['greet()', 2]);
});

test('a service whose program exits 3: qcop call exits 1 with EACTIVATION, the status and its stderr', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'], servicesDir: services(dir) });
  const r = await runCli(['call', '--socket', broker.socket, 'app/broken', 'x()', '--timeout', '20']);
  assert.is(r.code, 1, r.stdout);
  assert.match(r.stderr, /EACTIVATION/);
  assert.match(r.stderr, /status 3/);
  assert.match(r.stderr, /cannot read \/nonexistent\/config/);
  const stats = JSON.parse((await runCli(['stats', '--socket', broker.socket])).stdout);
  assert.is(stats.durable.activations.failed, 1);
  assert.is(stats.durable.activations.lastFailure.status, 3);
});

test('send --retain, then a new listener prints the value at once', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'] });
  const sent = await runCli(['send', '--socket', broker.socket, '--retain', 'cfg/mode', 'mode(QString)', '"eco"']);
  assert.is(sent.code, 0, sent.stderr);
  const started = Date.now();
  const got = await runCli(['listen', '--socket', broker.socket, 'cfg/mode', '--count', '1', '--timeout', '10']);
  assert.is(got.code, 0, got.stderr);
  assert.equal(JSON.parse(got.stdout), { channel: 'cfg/mode', message: 'mode(QString)', data: 'eco', retained: true });
  assert.ok(Date.now() - started < 9000);
  // Retaining without data clears it.
  await runCli(['send', '--socket', broker.socket, '--retain', 'cfg/mode', 'mode(QString)']);
  const none = await runCli(['listen', '--socket', broker.socket, 'cfg/*', '--timeout', '0.5']);
  assert.is(none.stdout, '');
});

test.run();
