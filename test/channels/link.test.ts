// Links between two spawned brokers over TCP: CLI end to end, no loops or duplicates, reconnect with bounded loss.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Client } from '../../runtime/index.js';
import { Proc, QCOP, cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { Gate, TOKEN, freePort, makeCerts, spawnQcopd, stop, type TcpBroker } from '../conformance/net.js';

const brokers: TcpBroker[] = [];
const clients: Client[] = [];
const gates: Gate[] = [];

async function broker(args: string[], socket?: string): Promise<TcpBroker> {
  const b = await spawnQcopd(args, socket);
  brokers.push(b);
  return b;
}

async function client(b: TcpBroker, name = 'c'): Promise<Client> {
  const c = await connect({ socket: b.socket, name, waitForBroker: 2000 });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

const linkStats = async (c: Client) => ((await c.stats()) as any).carriers?.tcp.links[0] ?? {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.after.each(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(brokers.splice(0).map((b) => stop(b)));
  await Promise.all(gates.splice(0).map((g) => g.close()));
});
test.after(() => cleanup());

test('qcop listen on one broker sees qcop send on the other, both ways (CLI only)', async () => {
  const a = await broker(['--tcp', '127.0.0.1:0', '--tcp-token', TOKEN]);
  const b = await broker(['--link', a.url, '--export', 'x/*', '--import', 'x/*', '--link-token', TOKEN]);
  const bc = await client(b);
  await waitFor(async () => (await linkStats(bc)).state === 'up', 5000, 'the link to come up');
  for (const [listenOn, sendOn] of [[a, b], [b, a]] as const) {
    const listener = new Proc(process.execPath, [QCOP, 'listen', 'x/*', '--count', '1', '--timeout', '5', '--socket', listenOn.socket]);
    // Both brokers have a link listener on x/* already: wait for the CLI's own registration.
    const probe = await client(listenOn);
    const cliListening = async () => ((await probe.stats()) as any).queues.connections.some((c: any) => c.name === 'qcop-cli' && c.listeners > 0);
    await waitFor(cliListening, 5000, 'qcop listen to register');
    const sent = await runCli(['send', 'x/hello', 'greet(QString)', '"from afar"', '--socket', sendOn.socket]);
    assert.is(sent.code, 0, sent.stderr);
    const { code } = await listener.exited;
    assert.is(code, 0, listener.stderr);
    assert.equal(listener.json(), [{ channel: 'x/hello', message: 'greet(QString)', data: 'from afar' }]);
  }
});

test('as the README says: `qcop broker --tcp 127.0.0.1:PORT` with no token, a second broker linked to it, listen here, send there', async () => {
  // Same user, same host: the link finds the listener's generated token in the user's qcop folder.
  const env = { QCOP_TCP_TOKEN: '', XDG_RUNTIME_DIR: tempDir() };
  const port = await freePort();
  const a = await spawnQcopd(['--tcp', `127.0.0.1:${port}`], undefined, env);
  brokers.push(a);
  const b = await spawnQcopd(['--link', `tcp://127.0.0.1:${port}`, '--export', 'demo/*', '--import', 'demo/*'], undefined, env);
  brokers.push(b);
  const bc = await client(b);
  await waitFor(async () => (await linkStats(bc)).state === 'up', 5000, 'the link to come up');
  const listener = new Proc(process.execPath, [QCOP, 'listen', 'demo/*', '--count', '1', '--timeout', '5', '--socket', a.socket], env);
  const probe = await client(a);
  await waitFor(async () => ((await probe.stats()) as any).queues.connections.some((c: any) => c.name === 'qcop-cli' && c.listeners > 0), 5000, 'qcop listen');
  const sent = await runCli(['send', 'demo/x', 'hello(int)', '42', '--socket', b.socket], env);
  assert.is(sent.code, 0, sent.stderr);
  assert.is((await listener.exited).code, 0, listener.stderr);
  assert.equal(listener.json(), [{ channel: 'demo/x', message: 'hello(int)', data: 42 }]);
});

test('a link exporting and importing the same patterns makes no loop and no duplicate', async () => {
  const a = await broker(['--tcp', '127.0.0.1:0', '--tcp-token', TOKEN]);
  const b = await broker(['--link', a.url, '--export', 'x/*', '--import', 'x/*', '--link-token', TOKEN]);
  const [ca, cb] = [await client(a, 'la'), await client(b, 'lb')];
  await waitFor(async () => (await linkStats(cb)).state === 'up', 5000, 'the link to come up');
  const seenA: string[] = [];
  const seenB: string[] = [];
  await ca.listen('x/*', (m) => seenA.push(`${m.channel}:${m.data}`)).ready;
  await cb.listen('x/*', (m) => seenB.push(`${m.channel}:${m.data}`)).ready;
  await waitFor(async () => (await ca.isRegistered('x/b')) && (await cb.isRegistered('x/a')), 5000, 'import listeners');
  const N = 50;
  for (let i = 0; i < N; i++) {
    ca.send('x/a', 'm()', i);
    cb.send('x/b', 'm()', i);
  }
  await Promise.all([ca.flush(), cb.flush()]);
  await waitFor(() => seenA.length >= 2 * N && seenB.length >= 2 * N, 5000, `${2 * N} messages on each side`);
  await sleep(500); // a loop would keep going; give it the chance to show
  for (const seen of [seenA, seenB]) {
    assert.is(seen.length, 2 * N, 'each message once on each broker');
    for (const ch of ['x/a', 'x/b']) {
      assert.equal(seen.filter((s) => s.startsWith(ch + ':')).map((s) => Number(s.split(':')[1])), [...Array(N).keys()], `${ch} once each, in order`);
    }
  }
  const [sa, sb] = [(await ca.stats()) as any, (await cb.stats()) as any];
  assert.is(sa.routed, 2 * N, 'broker A routed its own and the imported ones, nothing more');
  assert.is(sb.routed, 2 * N, 'broker B likewise');
  const link = sb.carriers.tcp.links[0];
  assert.is(link.exported, N);
  assert.is(link.imported, N);
  assert.is(link.echoesSuppressed, undefined, 'no echo to recognise: the link announces noecho');
  assert.is(link.lost, 0);
});

test('a link over mutual TLS carries messages; the linked broker shows up by its certificate CN', async () => {
  const certs = makeCerts();
  const a = await broker(['--tcp', '127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.ca, '--tls-require-client-cert']);
  const config = path.join(tempDir(), 'b.json');
  fs.writeFileSync(config, JSON.stringify({
    name: 'board-b',
    links: [{ url: a.url, export: ['t/*'], tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } }],
  }));
  const b = await broker(['--config', config]);
  const [ca, cb] = [await client(a), await client(b)];
  await waitFor(async () => (await linkStats(cb)).state === 'up', 5000, 'the TLS link to come up');
  const got: unknown[] = [];
  await ca.listen('t/*', (m) => got.push(m.data)).ready;
  cb.send('t/x', 'm()', 'secure');
  await waitFor(() => got.length === 1, 5000, 'the message over TLS');
  const peers = ((await ca.stats()) as any).carriers.tcp.listener.peers;
  assert.equal(peers.map((p: any) => p.identity), ['CN=board-7']);
  const conns = ((await ca.stats()) as any).queues.connections;
  assert.ok(conns.some((c: any) => c.name === 'qcop-link:board-b' && c.id === peers[0].connection), 'the link names its broker');
});

test('a call across a link is declined at once: ENOLISTENER, not a timeout', async () => {
  const a = await broker(['--tcp', '127.0.0.1:0', '--tcp-token', TOKEN]);
  const b = await broker(['--link', a.url, '--import', 'svc/*', '--link-token', TOKEN]);
  const ca = await client(a);
  await waitFor(async () => ca.isRegistered('svc/clock'), 5000, 'the link to listen on A');
  const t0 = Date.now();
  try {
    await ca.call('svc/clock', 'now()', undefined, { timeoutMs: 60000 });
    assert.unreachable('the call must fail');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ENOLISTENER');
  }
  assert.ok(Date.now() - t0 < 30000, 'declined long before the 60 s timeout');
  void b;
});

test('peer broker killed mid-link: the link holds its broker back (bounded buffering), reconnects, delivers all in order, no duplicates', async () => {
  const port = await freePort();
  const aArgs = ['--tcp', `127.0.0.1:${port}`, '--tcp-token', TOKEN];
  let a = await broker(aArgs);
  const aSocket = a.socket;
  // The link goes through a gate, so the test decides when the restarted broker becomes reachable.
  const gate = new Gate(() => port);
  gates.push(gate);
  const config = path.join(tempDir(), 'b.json');
  fs.writeFileSync(config, JSON.stringify({
    links: [{ url: `tcp://127.0.0.1:${await gate.port}`, export: ['x/*'], import: ['y/*'], token: TOKEN, maxBufferedBytes: 4096 }],
  }));
  const b = await broker(['--config', config]);
  const cb = await client(b, 'sender');
  await waitFor(async () => (await linkStats(cb)).state === 'up', 5000, 'the link to come up');

  await stop(a, 'SIGKILL');
  gate.open = false;
  await waitFor(async () => (await linkStats(cb)).state === 'down', 5000, 'the link to notice');
  const payload = 'p'.repeat(100);
  for (let i = 0; i < 200; i++) cb.send('x/seq', 'm()', [i, payload]);
  await cb.flush();
  // SPEC §2: the link stops reading; the rest waits in the broker's queue for it (its stallMs and
  // maxQueueBytes bound that wait), none is dropped in this short outage.
  await waitFor(async () => (await linkStats(cb)).bufferedBytes > 0, 5000, 'the link to buffer');
  const down = await linkStats(cb);
  assert.ok(down.bufferedBytes <= 4096 + 4096 + 64 * 1024, `the link's buffer stays bounded: its client's backlog, its own, one read (${JSON.stringify(down)})`);
  assert.is(down.lost, 0);
  const buffered = 200;

  a = await broker(aArgs, aSocket);
  const ca = await client(a, 'receiver');
  const got: number[] = [];
  await ca.listen('x/*', (m) => got.push((m.data as [number])[0])).ready;
  gate.open = true;
  await waitFor(() => got.length >= buffered, 10000, `${buffered} buffered messages`);
  await waitFor(async () => (await ca.isRegistered('y/z')), 5000, 'the import listener re-registered');
  await sleep(300);
  assert.equal(got, [...Array(buffered).keys()], 'the first messages, once each, in order');
  const up = await linkStats(cb);
  assert.is(up.state, 'up');
  assert.is(up.disconnects, 1);
  assert.is(up.exported + up.lost, 200);
  // And the other direction works again.
  const back: unknown[] = [];
  await cb.listen('y/*', (m) => back.push(m.data)).ready;
  assert.is(await ca.deliver('y/z', 'm()', 'back'), 1);
  await waitFor(() => back.length === 1, 5000, 'the import direction');
});

test.run();
