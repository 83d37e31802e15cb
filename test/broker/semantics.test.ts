// SPEC §2 semantics against an in-process broker on a Unix socket: delivery, wildcards, calls, watches, errors.
import * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, startBroker, type Broker, type Client, type ReceivedMessage, type WatchEvent } from '../../runtime/index.js';
import { cleanup, tempDir, waitFor } from '../helpers/procs.js';

let broker: Broker;
let socket: string;
const clients: Client[] = [];

async function client(name = 'c'): Promise<Client> {
  const c = await connect({ socket, name });
  clients.push(c);
  return c;
}

test.before.each(async () => {
  socket = path.join(tempDir(), 'q.sock');
  broker = await startBroker({ socket, maxListeners: 8, logLevel: 'error' });
});

test.after.each(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await broker.close();
  cleanup();
});

test('a message reaches every listening process, the sender included, once per process', async () => {
  const a = await client('a');
  const b = await client('b');
  const got: string[] = [];
  await a.listen('QPE/System', (m) => got.push(`a:${m.data}`)).ready;
  await b.listen('QPE/System', (m) => got.push(`b1:${m.data}`)).ready;
  await b.listen('QPE/*', (m) => got.push(`b2:${m.channel}:${m.data}`)).ready;
  const n = await a.deliver('QPE/System', 'setVolume(int)', 7);
  await a.flush();
  await b.flush();
  assert.is(n, 2, 'two processes receive');
  assert.equal(got.sort(), ['a:7', 'b1:7', 'b2:QPE/System:7']);
});

test('a pattern listener is told the concrete channel; patterns cross "/"', async () => {
  const a = await client();
  const seen: string[] = [];
  await a.listen('QPE/*', (m) => seen.push(m.channel)).ready;
  await a.listen('s?n/[ab]*', (m) => seen.push(m.channel)).ready;
  a.send('QPE/Application/x', 'm()');
  a.send('sun/a', 'm()');
  a.send('s/n/b', 'm()');
  a.send('sun/c', 'm()');
  await a.flush();
  assert.equal(seen, ['QPE/Application/x', 'sun/a', 's/n/b']);
});

test('flush counts sends routed since the previous flush and the unrouted ones', async () => {
  const a = await client();
  await a.listen('x/y', () => {}).ready;
  a.send('x/y', 'm()');
  a.send('nobody/here', 'm()');
  a.send('nobody/here', 'm()');
  await a.deliver('x/y', 'not-counted()');
  assert.equal(await a.flush(), { messages: 3, unrouted: 2 });
  assert.equal(await a.flush(), { messages: 0, unrouted: 0 });
  const s = await a.stats();
  assert.is((s.dropped as any).unrouted, 2);
});

test('every listener sees messages in one order across senders', async () => {
  const senders = [await client('s1'), await client('s2'), await client('s3')];
  const receivers = [await client('r1'), await client('r2'), await client('r3')];
  const seen: string[][] = receivers.map(() => []);
  await Promise.all(receivers.map((r, i) => r.listen('order/*', (m) => seen[i]!.push(m.data as string)).ready));
  for (let k = 0; k < 200; k++) senders.forEach((s, i) => s.send(`order/${i}`, 'n(int)', `${i}:${k}`));
  await Promise.all(senders.map((s) => s.flush()));
  await Promise.all(receivers.map((r) => r.flush()));
  assert.is(seen[0]!.length, 600);
  assert.equal(seen[1], seen[0]);
  assert.equal(seen[2], seen[0]);
  for (let i = 0; i < 3; i++) {
    const mine = seen[0]!.filter((x) => x.startsWith(`${i}:`)).map((x) => Number(x.split(':')[1]));
    assert.equal(mine, [...Array(200).keys()], `sender ${i} in order`);
  }
});

test('data round-trips: maps, arrays, bytes, bigint, Date, no data', async () => {
  const a = await client();
  const got: ReceivedMessage[] = [];
  await a.listen('d', (m) => got.push(m)).ready;
  const value = { n: 1.5, s: 'ü', a: [1, 'two', null], b: Buffer.from([0, 255]), big: 2n ** 70n, when: new Date(86400000) };
  a.send('d', 'v()', value);
  a.send('d', 'none()');
  await a.flush();
  assert.equal(got[0]!.data, value);
  assert.is(got[1]!.data, undefined);
  assert.is(got[1]!.bytes.length, 0);
});

test('sending to a pattern and bad names are refused with EINVAL', async () => {
  const a = await client();
  for (const bad of ['QPE/*', '', 'a//b', '/a', 'a/', 'nul\0x', 'x'.repeat(256)]) {
    try {
      a.send(bad, 'm()');
      assert.unreachable(`send to ${JSON.stringify(bad)}`);
    } catch (err: any) {
      assert.is(err.code, 'EINVAL', JSON.stringify(bad));
    }
  }
  await a.isRegistered('QPE/*').then(() => assert.unreachable('pattern query'), (e) => assert.is(e.code, 'EINVAL'));
});

test('isRegistered answers for exact and pattern listeners', async () => {
  const a = await client();
  const b = await client();
  assert.is(await a.isRegistered('dev/x'), false);
  const l = b.listen('dev/*', () => {});
  await l.ready;
  assert.is(await a.isRegistered('dev/x'), true);
  l.close();
  await b.flush();
  assert.is(await a.isRegistered('dev/x'), false);
});

test('watch reports current state first, then changes; a pattern watch matches names as text', async () => {
  const a = await client();
  const b = await client();
  await b.listen('wi/*', () => {}).ready;
  const byPattern: WatchEvent[] = [];
  const byName: WatchEvent[] = [];
  await a.watch('wi/*', (e) => byPattern.push(e)).ready;
  await a.watch('wi/c', (e) => byName.push(e)).ready;
  assert.equal(byPattern, [{ type: 'registered', channel: 'wi/*', initial: true }]);
  const l = b.listen('wi/c', () => {});
  await l.ready;
  l.close();
  await b.flush();
  await waitFor(() => byPattern.length === 3, 2000, 'events');
  assert.equal(byPattern.slice(1), [{ type: 'registered', channel: 'wi/c' }, { type: 'unregistered', channel: 'wi/c' }]);
  assert.equal(byName, [{ type: 'registered', channel: 'wi/c' }, { type: 'unregistered', channel: 'wi/c' }]);
});

test('a name is registered once however many processes listen, unregistered when the last goes', async () => {
  const a = await client();
  const b = await client();
  const c = await client();
  const events: string[] = [];
  await a.watch('svc', (e) => events.push(e.type)).ready;
  await b.listen('svc', () => {}).ready;
  await c.listen('svc', () => {}).ready;
  await b.close();
  await a.flush();
  assert.equal(events, ['registered']);
  await c.close();
  await waitFor(() => events.length === 2, 2000, 'unregistered');
  assert.equal(events, ['registered', 'unregistered']);
});

test('call resolves with the first reply; later replies are counted; failures carry the code', async () => {
  const a = await client();
  const fast = await client();
  const slow = await client();
  await fast.listen('svc/clock', (m) => m.reply!({ t: 1 })).ready;
  await slow.listen('svc/clock', (m) => setTimeout(() => m.reply!({ t: 2 }), 30)).ready;
  assert.equal(await a.call('svc/clock', 'now()'), { t: 1 });
  await waitFor(async () => ((await a.stats()).calls as any).lateReplies === 1, 2000, 'late reply counted');
  await fast.listen('svc/fail', (m) => m.fail!('EBUSY', 'try later')).ready;
  try {
    await a.call('svc/fail', 'x()');
    assert.unreachable();
  } catch (err: any) {
    assert.is(err.code, 'EBUSY');
    assert.match(err.message, 'try later');
  }
});

test('call fails at once with ENOLISTENER: nobody listens, or every receiver goes away', async () => {
  const a = await client();
  const started = Date.now();
  await a.call('nobody', 'x()', undefined, { timeoutMs: 60000 }).then(() => assert.unreachable(), (e) => assert.is(e.code, 'ENOLISTENER'));
  const b = await client();
  await b.listen('dies', () => void b.close()).ready;
  await a.call('dies', 'x()', undefined, { timeoutMs: 60000 }).then(() => assert.unreachable(), (e) => assert.is(e.code, 'ENOLISTENER'));
  assert.ok(Date.now() - started < 30000, 'neither waited for the 60 s timeout');
});

test('call times out with ETIMEDOUT when the receiver never answers', async () => {
  const a = await client();
  const b = await client();
  await b.listen('mute', () => {}).ready;
  await a.call('mute', 'x()', undefined, { timeoutMs: 100 }).then(() => assert.unreachable(), (e) => assert.is(e.code, 'ETIMEDOUT'));
});

test('too many listeners: the handle gets an ELIMIT error event, the connection stays usable', async () => {
  const a = await client();
  for (let i = 0; i < 8; i++) await a.listen(`l/${i}`, () => {}).ready;
  const extra = a.listen('l/8', () => {});
  const err = await new Promise<any>((resolve) => extra.on('error', resolve));
  assert.is(err.code, 'ELIMIT');
  await extra.ready.then(() => assert.unreachable(), (e) => assert.is(e.code, 'ELIMIT'));
  assert.is(await a.deliver('l/0', 'still()'), 1);
});

test('connect rejects with ENOBROKER naming the socket, also when nothing completes the handshake', async () => {
  const missing = path.join(tempDir(), 'none.sock');
  await connect({ socket: missing }).then(() => assert.unreachable(), (e) => {
    assert.is(e.code, 'ENOBROKER');
    assert.match(e.message, missing);
  });
  const silent = path.join(tempDir(), 'silent.sock');
  const server = net.createServer(() => {});
  await new Promise<void>((r) => server.listen(silent, r));
  try {
    await connect({ socket: silent, connectTimeoutMs: 200 }).then(() => assert.unreachable(), (e) => assert.is(e.code, 'ENOBROKER'));
  } finally {
    server.close();
  }
});

test('waitForBroker keeps trying until a broker appears', async () => {
  const later = path.join(tempDir(), 'later.sock');
  const pending = connect({ socket: later, waitForBroker: 5000 });
  await new Promise((r) => setTimeout(r, 150));
  const b2 = await startBroker({ socket: later, logLevel: 'error' });
  const c = await pending;
  assert.ok(c.connected);
  await c.close();
  await b2.close();
});

test('a second broker refuses to start over a live one and replaces a stale socket', async () => {
  await startBroker({ socket, logLevel: 'error' }).then(() => assert.unreachable(), (e) => assert.is(e.code, 'EADDRINUSE'));
  const stalePath = path.join(tempDir(), 'stale.sock');
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(stalePath, r));
  // Closing a server on a path it did not unlink leaves a stale socket file (as a killed broker does).
  (s as any)._handle?.close?.();
  const b2 = await startBroker({ socket: stalePath, logLevel: 'error' });
  await b2.close();
});

test('an in-process client needs no socket', async () => {
  const local = await startBroker({ noSocket: true, logLevel: 'error' });
  const a = await connect({ broker: local });
  const got: unknown[] = [];
  await a.listen('here', (m) => got.push(m.data)).ready;
  a.send('here', 'x()', 1);
  await a.flush();
  assert.equal(got, [1]);
  await a.close();
  await local.close();
});

test('send returns false past the high-water mark, then drain follows; nothing is lost', async () => {
  const rx = await client('rx');
  let got = 0;
  await rx.listen('bulk', () => got++).ready;
  const tx = await connect({ socket, highWaterMark: 64 * 1024 });
  clients.push(tx);
  const data = Buffer.alloc(8 * 1024);
  let sent = 0;
  while (tx.send('bulk', 'chunk()', data)) sent++;
  sent++;
  assert.ok(tx.bufferedBytes >= 64 * 1024);
  await new Promise<void>((resolve) => tx.once('drain', resolve));
  assert.ok(tx.bufferedBytes < 64 * 1024);
  await tx.flush();
  await rx.flush();
  await waitFor(() => got === sent, 3000, 'every chunk');
});

test('while the broker is away sends are buffered up to the high-water mark, the rest refused with ENOBUFS', async () => {
  // reconnectWatch false: the listener below must be there before the buffered sends go out (backoff only).
  const tx = await connect({ socket, highWaterMark: 4096, reconnectMaxDelayMs: 100, reconnectWatch: false });
  clients.push(tx);
  const down = new Promise((r) => tx.once('disconnected', r));
  await broker.close();
  await down;
  let buffered = 0;
  let refused: any = null;
  try {
    for (;;) {
      tx.send('later', 'm(int)', buffered);
      buffered++;
    }
  } catch (err) {
    refused = err;
  }
  assert.is(refused?.code, 'ENOBUFS');
  assert.ok(buffered > 10);
  broker = await startBroker({ socket, logLevel: 'error' });
  const rx = await client('rx');
  const got: number[] = [];
  await rx.listen('later', (m) => got.push(m.data as number)).ready;
  await new Promise((r) => tx.once('reconnected', r));
  assert.equal(await tx.flush(), { messages: buffered, unrouted: 0 });
  await rx.flush();
  await waitFor(() => got.length === buffered, 3000, 'buffered messages');
  assert.equal(got, [...Array(buffered).keys()]);
});

test('QCopChannel: static send/isRegistered/flush and a received event, as in Qt', async () => {
  const { QCopChannel } = await import('../../runtime/index.js');
  await QCopChannel.connect({ socket });
  try {
    const ch = new QCopChannel('QPE/System');
    const got: unknown[] = [];
    ch.on('received', (message: string, data: unknown) => got.push([message, data]));
    await waitFor(() => QCopChannel.isRegistered('QPE/System'), 2000, 'registered');
    assert.ok(QCopChannel.send('QPE/System', 'setVolume(int)', 7));
    assert.equal(await QCopChannel.flush(), { messages: 1, unrouted: 0 });
    assert.equal(got, [['setVolume(int)', 7]]);
    ch.close();
  } finally {
    await QCopChannel.disconnect();
  }
});

test('echo: false (noecho): a client never receives its own sends where it listens; others do; deliver() does not count it', async () => {
  const quiet = await connect({ socket, name: 'quiet', echo: false });
  clients.push(quiet);
  const other = await client('other');
  const mine: unknown[] = [];
  const theirs: unknown[] = [];
  await quiet.listen('echo/*', (m) => mine.push(m.data)).ready;
  await other.listen('echo/*', (m) => theirs.push(m.data)).ready;
  quiet.send('echo/a', 'm(int)', 1);
  assert.is(await quiet.deliver('echo/a', 'm(int)', 2), 1, 'only the other listener counts');
  other.send('echo/a', 'm(int)', 3);
  await Promise.all([quiet.flush(), other.flush()]);
  await waitFor(() => theirs.length === 3 && mine.length === 1, 3000, 'the messages');
  assert.equal(theirs, [1, 2, 3]);
  assert.equal(mine, [3], 'only what another client sent');
});

test.run();
