// Typed interfaces (SPEC §12, docs/TYPED.md): expose in another process, proxy calls and signals, errors, introspection, `qcop introspect`.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { introspect as introspectCommand } from '../../runtime/cli/introspect-command.js';
import { runCommand } from '../../runtime/cli/run.js';
import { connect, startBroker, QcopError, type Broker, type Client, type ReceivedMessage } from '../../runtime/index.js';
import { expose, introspect, proxy, type InterfaceDescription } from '../../runtime/client/typed.js';
import { Proc, cleanup, tempDir, waitFor } from '../helpers/procs.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/volume.ts');

interface Volume {
  setVolume(level: number): number;
  getVolume(): Promise<number>;
  mix(a: string, b: { n: number }, c: Uint8Array): { joined: string; n: number; bytes: number };
  busy(): void;
  denied(): void;
  broken(): Promise<void>;
  missing(): void; // not exposed by the fixture
}
type VolumeSignals = { volumeChanged: [level: number] };

const DESCRIPTION: InterfaceDescription = {
  interface: 'org.example.Volume',
  methods: [
    { name: 'setVolume', signature: 'setVolume(int)' },
    { name: 'getVolume', signature: 'getVolume()' },
    { name: 'mix', signature: 'mix(QString,QVariantMap,QByteArray)' },
    { name: 'busy', signature: 'busy()' },
    { name: 'denied', signature: 'denied()' },
    { name: 'broken', signature: 'broken()' },
  ],
  signals: [{ name: 'volumeChanged', signature: 'volumeChanged(int)' }],
};

let broker: Broker;
let socket: string;
const clients: Client[] = [];

async function client(name = 'c'): Promise<Client> {
  const c = await connect({ socket, name });
  clients.push(c);
  return c;
}

/** Spawns the fixture exposing a Volume on `channel` in another process; resolves once it is served. */
async function spawnVolume(channel = 'svc/volume'): Promise<Proc> {
  const p = new Proc(process.execPath, ['--import', 'tsx', FIXTURE, socket, channel]);
  await p.waitJson((v) => v.ready === true, 15000, 'the volume fixture');
  return p;
}

async function rejects(p: Promise<unknown>): Promise<QcopError> {
  return p.then(
    () => assert.unreachable('expected a rejection') as never,
    (e: QcopError) => e,
  );
}

/** Runs a CLI command in this process with stdout and stderr captured. */
async function captured(run: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { code: await run(), stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

test.before.each(async () => {
  socket = path.join(tempDir(), 'q.sock');
  broker = await startBroker({ socket, logLevel: 'error' });
});

test.after.each(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await cleanup();
  await broker.close();
});

test('a proxy calls an object exposed in another process and receives its signal; the wire is Qt-shaped', async () => {
  await spawnVolume();
  const c = await client('caller');
  const spy = await client('spy');
  const seen: Array<{ message: string; data: unknown; call: boolean }> = [];
  await spy.listen('svc/volume', (m: ReceivedMessage) => {
    seen.push({ message: m.message, data: m.data, call: m.isCall });
    m.decline?.();
  }).ready;
  const vol = proxy<Volume, VolumeSignals>(c, 'svc/volume', { description: { setVolume: ['int'] } });
  const levels: number[] = [];
  const sub = vol.on('volumeChanged', (level) => levels.push(level));
  await sub.ready;
  const before: number = await vol.setVolume(7);
  assert.is(before, 0);
  await waitFor(() => levels.length === 1, 5000, 'the volumeChanged signal');
  assert.equal(levels, [7]);
  const now: number = await vol.getVolume();
  assert.is(now, 7);
  assert.equal(await vol.mix('a', { n: 2 }, new Uint8Array(3)), { joined: 'a', n: 2, bytes: 3 });
  // A Qt-style plain send with one bare argument invokes the method too (no reply).
  c.send('svc/volume', 'setVolume(int)', 9);
  await waitFor(() => levels.length === 2, 5000, 'the second signal');
  assert.is(await vol.getVolume(), 9);
  await waitFor(() => seen.filter((s) => s.message === 'volumeChanged(int)').length === 2, 5000, 'the spy');
  assert.equal(seen.find((s) => s.message === 'setVolume(int)' && s.call), { message: 'setVolume(int)', data: [7], call: true });
  assert.equal(seen.find((s) => s.message === 'getVolume()'), { message: 'getVolume()', data: undefined, call: true });
  assert.equal(seen.filter((s) => s.message === 'volumeChanged(int)').map((s) => [s.data, s.call]), [[[7], false], [[9], false]]);
  sub.close();
  vol.close();
  await rejects(vol.getVolume()).then((e) => assert.is(e.code, 'ECLOSED'));
});

test('errors: the thrown code, EFAIL without one, ENOTSUP for an unknown method, EINVAL for a wrong count, ENOLISTENER for nobody', async () => {
  const fixture = await spawnVolume();
  const c = await client();
  const vol = proxy<Volume>(c, 'svc/volume', { timeoutMs: 60000 });
  const busy = await rejects(vol.busy());
  assert.is(busy.code, 'EBUSY');
  assert.is(busy.message, 'EBUSY: the mixer is busy');
  const denied = await rejects(vol.denied());
  assert.is(denied.code, 'EACCES');
  assert.is(denied.message, 'EACCES: not for you');
  const broken = await rejects(vol.broken());
  assert.is(broken.code, 'EFAIL');
  assert.match(broken.message, 'something broke');
  const missing = await rejects(vol.missing());
  assert.is(missing.code, 'ENOTSUP');
  assert.match(missing.message, "no method 'missing'");
  const wrong = await rejects((vol.setVolume as (...a: unknown[]) => Promise<number>)(1, 2));
  assert.is(wrong.code, 'EINVAL');
  assert.match(wrong.message, 'setVolume(int) takes 1 argument(s), got 2');
  const nobody = proxy<Volume>(c, 'svc/nobody', { timeoutMs: 60000 });
  assert.is((await rejects(nobody.getVolume())).code, 'ENOLISTENER');
  // A proxy subscribed to signals listens on the channel, yet declines calls: once the object is gone, ENOLISTENER at once.
  await vol.on('volumeChanged', () => {}).ready;
  fixture.kill('SIGTERM');
  await fixture.exited;
  const started = Date.now();
  assert.is((await rejects(vol.getVolume())).code, 'ENOLISTENER');
  assert.ok(Date.now() - started < 2000, 'not the timeout');
  vol.close();
});

test('qcop.introspect() answers the description: methods with signatures, signals, the interface name', async () => {
  await spawnVolume();
  const c = await client();
  assert.equal(await introspect(c, 'svc/volume'), DESCRIPTION);
  assert.equal(await c.call('svc/volume', 'qcop.introspect()'), DESCRIPTION);
  assert.is((await rejects(introspect(c, 'svc/none'))).code, 'ENOLISTENER');
});

test('qcop introspect prints the description as JSON or as a table; ENOLISTENER exits 1', async () => {
  await spawnVolume();
  const json = await captured(() => runCommand(introspectCommand, ['svc/volume', '--socket', socket]));
  assert.is(json.code, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout), DESCRIPTION);
  const text = await captured(() => runCommand(introspectCommand, ['svc/volume', '--socket', socket, '--format', 'text']));
  assert.is(text.code, 0, text.stderr);
  const rows = text.stdout.trimEnd().split('\n').map((l) => l.split(/\s{2,}/));
  assert.equal(rows[0], ['NAME', 'TYPE', 'SIGNATURE']);
  assert.equal(rows[1], ['org.example.Volume', 'interface', '-']);
  assert.equal(rows[2], ['setVolume', 'method', 'setVolume(int)']);
  assert.equal(rows.at(-1), ['volumeChanged', 'signal', 'volumeChanged(int)']);
  assert.is(rows.length, 9);
  const none = await captured(() => runCommand(introspectCommand, ['svc/none', '--socket', socket]));
  assert.is(none.code, 1);
  assert.is(none.stdout, '');
  assert.match(none.stderr, /^ENOLISTENER: /);
  const bad = await captured(() => runCommand(introspectCommand, ['svc/volume', '--socket', socket, '--format', 'xml']));
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^EINVAL: /);
});

test('in one process: expose and proxy share a client; emit, close, plain-message errors, checks', async () => {
  const c = await client();
  const impl = {
    level: 1,
    get(): number {
      return this.level;
    },
    fail(): void {
      throw Object.assign(new Error('no'), { code: 'ENOPE' });
    },
  };
  const handle = expose(c, 'svc/local', impl, { signals: ['changed'], description: { changed: ['int'] } });
  await handle.ready;
  assert.throws(() => expose(c, 'svc/local', {}), (e: QcopError) => e.code === 'EEXIST');
  assert.throws(() => handle.emit('nope' as 'changed'), (e: QcopError) => e.code === 'EINVAL');
  assert.throws(() => expose(c, 'svc/x', impl, { signals: ['get'] }), (e: QcopError) => e.code === 'EINVAL' && /both a method and a signal/.test(e.message));
  // A typo in the description is refused by the compiler, and at run time.
  // @ts-expect-error 'gett' is neither a method nor a signal
  assert.throws(() => expose(c, 'svc/x', impl, { description: { gett: ['int'] } }), (e: QcopError) => e.code === 'EINVAL');
  assert.throws(() => expose(c, 'svc/*', impl), (e: QcopError) => e.code === 'EINVAL');
  assert.equal(handle.description, { methods: [{ name: 'get', signature: 'get()' }, { name: 'fail', signature: 'fail()' }], signals: [{ name: 'changed', signature: 'changed(int)' }] });

  const p = proxy<typeof impl, { changed: [n: number] }>(c, 'svc/local');
  const got: number[] = [];
  await p.on('changed', (n) => got.push(n)).ready;
  assert.is(await p.get(), 1, 'the proxy of the exposing client does not decline its own calls');
  handle.emit('changed', 5);
  await c.flush();
  assert.equal(got, [5]);
  // Not thenable, not JSON-able as calls: awaiting a proxy gives the proxy.
  assert.is(await (p as unknown as Promise<unknown>), p);
  assert.is((p as unknown as Record<string, unknown>).then, undefined);
  assert.is((p as unknown as Record<string, unknown>)._hidden, undefined);

  const errors: QcopError[] = [];
  c.on('error', (e: QcopError) => errors.push(e));
  c.send('svc/local', 'fail()');
  await c.flush();
  await waitFor(() => errors.length === 1, 2000, 'the error event');
  assert.is(errors[0]!.code, 'ENOPE');

  handle.close();
  p.close();
  assert.is((await rejects(c.call('svc/local', 'get()', undefined, { timeoutMs: 60000 }))).code, 'ENOLISTENER');
  assert.throws(() => handle.emit('changed', 1), (e: QcopError) => e.code === 'ECLOSED');
  const again = expose(c, 'svc/local', impl);
  await again.ready;
  assert.is(await c.call('svc/local', 'get()'), 1, 'a closed exposure frees the channel');
  again.close();
});

test.run();
