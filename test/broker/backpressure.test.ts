// SPEC §2 backpressure against an in-process broker on a Unix socket: slow receivers lose nothing, stuck ones are dropped for alone.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, startBroker, type Broker, type BrokerOptions, type Client } from '../../runtime/index.js';
import { Flag, Kind } from '../../runtime/protocol/constants.js';
import { encodeData, decodeData } from '../../runtime/protocol/data.js';
import { encodeFrame } from '../../runtime/protocol/frame.js';
import { cleanup, tempDir, waitFor } from '../helpers/procs.js';
import { RawConn, type RawFrame } from '../helpers/raw.js';

const QUEUE = 64 * 1024;
let broker: Broker;
let socket: string;
const clients: Client[] = [];
const peers: RawConn[] = [];
const timers: NodeJS.Timeout[] = [];

async function start(options: BrokerOptions = {}): Promise<void> {
  socket = path.join(tempDir(), 'q.sock');
  broker = await startBroker({ socket, maxQueueBytes: QUEUE, stallMs: 300, logLevel: 'error', ...options });
}

async function client(name = 'c'): Promise<Client> {
  const c = await connect({ socket, name });
  clients.push(c);
  return c;
}

/** A raw receiver listening on `channels`; its socket starts paused when `paused`. */
async function rawReceiver(channels: string[], paused = false): Promise<RawConn> {
  const p = await RawConn.greeted(socket);
  peers.push(p);
  let id = 100;
  for (const ch of channels) {
    await p.write(encodeFrame(Kind.Listen, 0, ++id, 0, ch, ''));
    const want = id;
    await p.next((f) => f.kind === Kind.Result && f.id === want);
  }
  if (paused) p.socket.pause();
  return p;
}

/** Reads slowly but steadily: 5 ms of reading every 25 ms. */
function readSlowly(p: RawConn): void {
  p.socket.pause();
  const t = setInterval(() => {
    p.socket.resume();
    setTimeout(() => p.socket.pause(), 5);
  }, 25);
  timers.push(t);
}

const msgs = (p: RawConn): RawFrame[] => p.frames.filter((f) => f.kind === Kind.Msg);
const lostOf = (p: RawConn): number => p.frames.filter((f) => f.kind === Kind.Lost).reduce((n, f) => n + f.aux, 0);
const inOrder = (frames: RawFrame[]): boolean => frames.every((f, i) => decodeData(f.payload) === i);

/** Sends `n` numbered messages as fast as `'drain'` allows. */
async function sendAll(c: Client, channel: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (!c.send(channel, 'm(int)', i)) await new Promise((r) => c.once('drain', r));
  }
  await c.flush();
}

/** More than the kernel's socket buffers and the queue together, without waiting for 'drain'. */
function flood(c: Client, channel: string): void {
  const pad = 'x'.repeat(200);
  for (let i = 0; i < 10_000; i++) c.send(channel, 'm(int,QString)', [i, pad]);
}

test.after.each(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
  for (const p of peers.splice(0)) p.socket.destroy();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await broker.close();
  cleanup();
});

test('a receiver that reads slowly but steadily loses nothing; the sender is slowed to its pace', async () => {
  await start();
  const slow = await rawReceiver(['bp/a']);
  const a = await client('sender');
  readSlowly(slow);
  const n = 20_000; // some 700 KB of msg frames: ten times maxQueueBytes
  await sendAll(a, 'bp/a', n);
  await waitFor(() => msgs(slow).length >= n, 60_000, 'every message at the slow receiver');
  assert.is(msgs(slow).length, n);
  assert.ok(inOrder(msgs(slow)), 'in order');
  assert.is(lostOf(slow), 0);
  const s = broker.stats() as any;
  assert.is(s.dropped.slowConsumer, 0);
  assert.is(s.backpressure.stuckReceivers, 0);
});

test('a receiver that stops reading is stuck after stallMs: the others get everything, it is told what it lost', async () => {
  await start();
  const stopped = await rawReceiver(['bp/b'], true);
  const live = await client('live');
  let got = 0;
  await live.listen('bp/b', () => got++).ready;
  const a = await client('sender');
  const n = 20_000;
  await sendAll(a, 'bp/b', n);
  await waitFor(() => got === n, 60_000, 'every message at the live receiver');
  const s = broker.stats() as any;
  assert.ok(s.backpressure.stuckReceivers >= 1, 'declared stuck');
  stopped.socket.resume();
  await waitFor(() => msgs(stopped).length + lostOf(stopped) === n, 20_000, 'received + lost == sent');
  assert.ok(lostOf(stopped) > 0);
  assert.ok(inOrder(msgs(stopped).slice(0, 10)), 'what it got first is in order');
});

test('a stuck receiver holds nobody again until it drains: a stopped receiver costs stallMs once', async () => {
  await start();
  const stopped = await rawReceiver(['bp/s'], true);
  const a = await client('sender');
  flood(a, 'bp/s');
  await waitFor(() => (broker.stats() as any).backpressure.stuckReceivers === 1, 10_000, 'stuck');
  await a.flush();
  // More traffic for the still stopped receiver: dropped for it, the sender never held again.
  flood(a, 'bp/s');
  await a.flush();
  const s = broker.stats() as any;
  assert.is(s.backpressure.stuckReceivers, 1, 'declared stuck once');
  assert.ok(s.queues.connections.every((c: any) => c.holdingSenders === 0 && !c.paused));
  assert.ok(s.queues.connections.some((c: any) => c.stuck));
  stopped.socket.resume();
  await waitFor(() => (broker.stats() as any).queues.connections.every((c: any) => !c.stuck), 20_000, 'live again below low water');
});

test('a sender that listens on its own channel, with a slow receiver too, loses nothing', async () => {
  await start();
  const slow = await rawReceiver(['bp/self']);
  const a = await client('self');
  let mine = 0;
  await a.listen('bp/self', () => mine++).ready;
  readSlowly(slow);
  const n = 10_000;
  await sendAll(a, 'bp/self', n);
  await waitFor(() => mine === n && msgs(slow).length === n, 60_000, 'both copies');
  assert.is(lostOf(slow), 0);
  assert.is((broker.stats() as any).dropped.slowConsumer, 0);
});

test('a call whose replier is held back completes once it reads, and fails cleanly when it never does', async () => {
  await start();
  const replier = await rawReceiver(['bp/flood', 'bp/svc'], true);
  const flooder = await client('flooder');
  const caller = await client('caller');
  // Fill the replier's queue past its mark: the flooder is paused for it.
  flood(flooder, 'bp/flood');
  await waitFor(() => (broker.stats() as any).queues.connections.some((c: any) => c.holdingSenders > 0), 10_000, 'a held sender');
  const answer = caller.call('bp/svc', 'ask()', null, { timeoutMs: 5000 });
  // The replier reads again and answers the call.
  replier.socket.resume();
  const call = await replier.next((f) => f.kind === Kind.Msg && (f.flags & Flag.Call) !== 0, 10_000);
  await replier.write(encodeFrame(Kind.Reply, 0, call.id, 0, '', '', encodeData(42)));
  assert.is(await answer, 42);
  // A replier that never reads: the call ends with an error, and the caller is not left paused.
  replier.socket.pause();
  flood(flooder, 'bp/flood');
  const failed = await caller.call('bp/svc', 'ask()', null, { timeoutMs: 1500 }).then(() => 'answered', (e) => e.code);
  assert.ok(failed === 'ETIMEDOUT' || failed === 'ENOLISTENER', String(failed));
  assert.is(await caller.deliver('bp/none', 'm()'), 0, 'the caller still works');
});

test('a closed receiver releases the senders it held', async () => {
  await start({ stallMs: 60_000 });
  const stopped = await rawReceiver(['bp/c'], true);
  const a = await client('sender');
  flood(a, 'bp/c');
  await waitFor(() => (broker.stats() as any).queues.connections.some((c: any) => c.holdingSenders > 0), 10_000, 'a held sender');
  stopped.socket.destroy();
  assert.is(await a.deliver('bp/none', 'm()'), 0, 'the sender reads again');
});

test('with backpressure off, a full queue drops at once (counted, told), no receiver is stuck', async () => {
  await start({ backpressure: false, stallMs: 60_000 });
  const stopped = await rawReceiver(['bp/d'], true);
  const a = await client('sender');
  const n = 20_000;
  await sendAll(a, 'bp/d', n);
  const s = broker.stats() as any;
  assert.ok(s.dropped.slowConsumer > 0, 'dropped');
  assert.is(s.backpressure.stuckReceivers, 0);
  stopped.socket.resume();
  await waitFor(() => msgs(stopped).length + lostOf(stopped) === n, 20_000, 'received + lost == sent');
});

test('in-process: a slow steady reader loses nothing, the in-memory pair holds the writes back', async () => {
  await start();
  const p = new RawConn(broker.connectInProcess(), true);
  await p.hello();
  await p.write(encodeFrame(Kind.Listen, 0, 7, 0, 'bp/ip', ''));
  await p.next((f) => f.kind === Kind.Result && f.id === 7, 5000);
  const d = p.socket;
  d.pause();
  const t = setInterval(() => {
    d.resume();
    setTimeout(() => d.pause(), 5);
  }, 25);
  timers.push(t);
  const a = await connect({ broker: () => broker, name: 'ip-sender' });
  clients.push(a);
  const n = 20_000;
  await sendAll(a, 'bp/ip', n);
  const got = () => p.frames.filter((f) => f.kind === Kind.Msg);
  await waitFor(() => got().length >= n, 60_000, 'every message in process');
  assert.is(got().length, n);
  assert.ok(inOrder(got()));
  assert.is((broker.stats() as any).dropped.slowConsumer, 0);
  d.destroy();
});

test.run();
