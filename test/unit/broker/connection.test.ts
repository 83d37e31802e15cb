// One broker-side connection: frames in order, fatal errors, the bounded outbound queue and the slow-consumer policy.
import { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BUFFER_OVERHEAD, MemoryBudget } from '../../../runtime/broker/budget.js';
import { Connection, type ConnectionHost } from '../../../runtime/broker/connection.js';
import { Pauses } from '../../../runtime/broker/pauses.js';
import { encodeFrame, messageBytes, payloadOf, type Frame } from '../../../runtime/protocol/frame.js';
import { FrameParser } from '../../../runtime/protocol/parser.js';
import { waitFor } from '../../helpers/procs.js';

const KIND_MSG = 0x42;
const KIND_ERROR = 0x44;
const KIND_LOST = 0x46;

interface Out {
  kind: number;
  id: number;
  aux: number;
  message: string;
  text: string;
}

/** A stream standing for the client's socket: records what the broker writes, `slow` holds write callbacks. */
function fakeSocket(opts: { highWaterMark?: number; slow?: boolean } = {}) {
  const out: Out[] = [];
  const parser = new FrameParser(1 << 30);
  const held: Array<() => void> = [];
  const inbound: Buffer[] = [];
  const stream = new Duplex({
    highWaterMark: opts.highWaterMark ?? 16384,
    read() {},
    write(chunk: Buffer, _enc, cb) {
      parser.push(chunk, (f: Frame) =>
        out.push({ kind: f.kind, id: f.id, aux: f.aux, message: messageBytes(f).toString(), text: payloadOf(f).toString() }),
      );
      if (opts.slow) held.push(cb);
      else cb();
    },
    final(cb) {
      inbound.push(Buffer.from('END'));
      cb();
    },
  });
  const release = () => {
    while (held.length) held.shift()!();
  };
  return { stream, out, release, ended: () => inbound.length > 0 };
}

function fakeHost(overrides: Partial<ConnectionHost> = {}) {
  const frames: Frame[] = [];
  const closed: Connection[] = [];
  const slow: boolean[] = [];
  const dirty = new Set<Connection>();
  const host: ConnectionHost = {
    maxFrameBytes: 1 << 20,
    maxQueueBytes: 4096,
    slowConsumer: 'drop',
    partialFrameTimeoutMs: 60_000,
    backpressure: false,
    highWaterBytes: 2048,
    lowWaterBytes: 1024,
    stallMs: 1000,
    sender: null,
    pauses: new Pauses<Connection>(),
    countStuck: () => {},
    toldLost: () => {},
    budget: new MemoryBudget(64 << 20, 16 << 20, () => 0),
    onFrame: (_c, f) => frames.push(f),
    onClose: (c) => closed.push(c),
    markDirty: (c) => dirty.add(c),
    countProtocolError: () => {},
    countSlow: (_c, disconnected) => slow.push(disconnected),
    userQueued: () => {},
    userQueueFits: () => true,
    log: () => {},
    ...overrides,
  };
  const flush = () => {
    for (const c of dirty) c.flushOut();
    dirty.clear();
  };
  return { host, frames, closed, slow, flush };
}

const tick = () => new Promise((r) => setImmediate(r));

function msgFrame(i: number, payload = 80): Buffer {
  return encodeFrame(KIND_MSG, 0, i, 1, 'x', 'm', Buffer.alloc(payload));
}

test('frames arriving in pieces reach the host whole and in order', async () => {
  const { host, frames } = fakeHost();
  const { stream } = fakeSocket();
  new Connection(host, stream, 1, 'test', 60_000);
  const bytes = Buffer.concat([1, 2, 3].map((id) => encodeFrame(0x05, 0, id, 0, '', '')));
  stream.push(bytes.subarray(0, 20));
  stream.push(bytes.subarray(20));
  await tick();
  assert.equal(frames.map((f) => f.id), [1, 2, 3]);
});

const STREAM_ERRORS: Array<[string, Buffer, string]> = [
  ['a length below the header', Buffer.from([3, 0, 0, 0]), 'EPROTO'],
  ['a 4 GiB length', Buffer.from([0xff, 0xff, 0xff, 0xff]), 'EMSGSIZE'],
  ['names overrunning the frame', Buffer.concat([Buffer.from([17, 0, 0, 0, 4, 0, 9, 0]), Buffer.alloc(9)]), 'EPROTO'],
];

for (const [what, bytes, code] of STREAM_ERRORS) {
  test(`${what} gets one error frame with id 0 and code ${code}, then the stream is ended and closed`, async () => {
    const { host, frames, closed, flush } = fakeHost();
    const sock = fakeSocket();
    const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
    conn.opened();
    sock.stream.push(bytes);
    await tick();
    flush();
    await tick();
    assert.is(frames.length, 0);
    assert.is(sock.out.length, 1);
    assert.equal([sock.out[0]!.kind, sock.out[0]!.id, sock.out[0]!.message], [KIND_ERROR, 0, code]);
    assert.ok(sock.out[0]!.text.length > 0, 'a human text');
    assert.ok(sock.ended(), 'stream ended');
    assert.equal(closed, [conn]);
    assert.is(conn.state, 'closed');
  });
}

test('no hello within the handshake time gets EPROTO and a close', async () => {
  const { host, closed } = fakeHost();
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 20);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal([sock.out[0]?.kind, sock.out[0]?.id, sock.out[0]?.message], [KIND_ERROR, 0, 'EPROTO']);
  assert.equal(closed, [conn]);
});

test('a request error keeps the connection open and echoes id, kind and channel', () => {
  const { host, flush } = fakeHost();
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  conn.error('EINVAL', 'bad', 77, 0x02, 'a/b');
  flush();
  assert.equal(sock.out, [{ kind: KIND_ERROR, id: 77, aux: 0x02, message: 'EINVAL', text: 'bad' }]);
  assert.is(conn.state, 'open');
});

test('routed frames are refused before the handshake and after the close', () => {
  const { host } = fakeHost();
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  assert.is(conn.deliver(msgFrame(1)), false);
  conn.opened();
  assert.is(conn.deliver(msgFrame(2)), true);
  sock.stream.destroy();
  conn.fatal('EPROTO', 'x');
  assert.is(conn.deliver(msgFrame(3)), false);
});

test('drop policy: frames past the queue limit are dropped for that receiver and counted', () => {
  const { host, slow, flush } = fakeHost();
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  let accepted = 0;
  for (let i = 1; i <= 100; i++) if (conn.deliver(msgFrame(i))) accepted++;
  flush();
  assert.ok(accepted > 0 && accepted < 100);
  assert.is(slow.length, 100 - accepted);
  assert.ok(slow.every((d) => d === false));
  assert.is(conn.lostTotal, 100 - accepted);
  assert.is(sock.out.filter((o) => o.kind === KIND_MSG).length, accepted);
  assert.is(conn.state, 'open');
});

test('drop policy: a receiver whose socket drains is told how many it lost', async () => {
  const { host, flush } = fakeHost({ maxQueueBytes: 4096 });
  const sock = fakeSocket({ highWaterMark: 1024, slow: true });
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  let dropped = 0;
  for (let i = 1; i <= 100; i++) {
    if (!conn.deliver(msgFrame(i))) dropped++;
    if (i % 10 === 0) flush();
  }
  flush();
  assert.ok(dropped > 0);
  sock.release();
  for (let i = 0; i < 5; i++) {
    await tick();
    sock.release();
    flush();
  }
  const lost = sock.out.filter((o) => o.kind === KIND_LOST);
  assert.is(lost.reduce((n, o) => n + o.aux, 0), dropped);
  assert.ok(lost.every((o) => o.id === 0));
});

test('drop policy: a receiver that overflowed inside one batch is told how many it lost once it caught up', async () => {
  // The socket takes every write at once (it never reports backpressure), as a fast reader does
  // when maxQueueBytes is below the socket's own buffer size.
  const { host, flush } = fakeHost({ maxQueueBytes: 4096 });
  const sock = fakeSocket({ highWaterMark: 1 << 20 });
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  let dropped = 0;
  for (let i = 1; i <= 100; i++) if (!conn.deliver(msgFrame(i))) dropped++;
  flush();
  assert.ok(dropped > 0);
  for (let i = 0; i < 5; i++) {
    await tick();
    flush();
  }
  // Traffic goes on after the burst; the receiver keeps up.
  assert.ok(conn.deliver(msgFrame(1000)));
  flush();
  for (let i = 0; i < 5; i++) {
    await tick();
    flush();
  }
  const lost = sock.out.filter((o) => o.kind === KIND_LOST);
  assert.is(lost.reduce((n, o) => n + o.aux, 0), dropped, `lost frames: ${JSON.stringify(lost)}`);
});

test('disconnect policy: the first frame past the limit closes the receiver, counted once', () => {
  const { host, slow, closed } = fakeHost({ slowConsumer: 'disconnect' });
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  let refused = 0;
  for (let i = 1; i <= 100; i++) if (!conn.deliver(msgFrame(i))) refused++;
  assert.ok(refused > 0);
  assert.equal(slow, [true]);
  assert.equal(closed, [conn]);
  assert.is(conn.state, 'closed');
  assert.ok(sock.stream.destroyed);
});

test('control frames are queued past the routed-traffic limit, not dropped', () => {
  const { host, slow, flush } = fakeHost();
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  for (let i = 1; i <= 60; i++) conn.push(encodeFrame(0x43, 0, i, 0, '', '', Buffer.alloc(100)));
  flush();
  assert.is(sock.out.length, 60);
  assert.equal(slow, []);
});

test('a connection that lets control frames pile far past the limit is closed', () => {
  const { host, slow, closed } = fakeHost({ maxQueueBytes: 4096, maxFrameBytes: 4096 });
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  for (let i = 1; i <= 200 && conn.state !== 'closed'; i++) conn.push(encodeFrame(0x43, 0, i, 0, '', '', Buffer.alloc(100)));
  assert.is(conn.state, 'closed');
  assert.equal(slow, [true]);
  assert.equal(closed, [conn]);
});

test('the host hears about a close exactly once, whatever closes it', async () => {
  const { host, closed } = fakeHost();
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  conn.fatal('EPROTO', 'first');
  conn.fatal('EPROTO', 'second');
  sock.stream.destroy();
  await tick();
  assert.equal(closed, [conn]);
});

test('a frame not complete within partialFrameTimeoutMs closes the connection with ETIMEDOUT', async () => {
  const { host, closed } = fakeHost({ partialFrameTimeoutMs: 30 });
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  sock.stream.push(encodeFrame(0x04, 0, 1, 0, 'a', 'b', Buffer.alloc(1000)).subarray(0, 500));
  await waitFor(() => closed.length > 0, 5000, 'the close');
  assert.equal([sock.out[0]?.kind, sock.out[0]?.id, sock.out[0]?.message], [KIND_ERROR, 0, 'ETIMEDOUT']);
  assert.is(conn.state, 'closed');
  assert.is(host.budget.partial, 0, 'the partial frame was given back');
});

test('frames that keep completing are never timed out, though each chunk ends inside one', async () => {
  const { host, frames, closed } = fakeHost({ partialFrameTimeoutMs: 40 });
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  const stream = Buffer.concat(Array.from({ length: 40 }, (_, i) => encodeFrame(0x05, 0, i + 1, 0, '', '', Buffer.alloc(30))));
  for (let at = 0; at < stream.length; at += 70) {
    sock.stream.push(stream.subarray(at, at + 70));
    await new Promise((r) => setTimeout(r, 5));
  }
  await waitFor(() => frames.length === 40, 5000, 'every frame');
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(closed, []);
});

test('a connection the broker paused itself is not timed out for its incomplete frame', async () => {
  const { host, closed } = fakeHost({ partialFrameTimeoutMs: 20 });
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  const frame = encodeFrame(0x05, 0, 1, 0, '', '', Buffer.alloc(100));
  sock.stream.push(frame.subarray(0, 50));
  await tick();
  sock.stream.pause();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(closed, []);
  sock.stream.resume();
  sock.stream.push(frame.subarray(50));
  await tick();
  assert.equal(closed, []);
});

test('a frame arriving in pieces past the budget gets ENOBUFS for its request; the connection goes on', async () => {
  const { host, frames, closed, flush } = fakeHost({ budget: new MemoryBudget(64 << 20, 100_000, () => 0) });
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  const big = encodeFrame(0x04, 0, 7, 0, 'a', 'b', Buffer.alloc(300_000));
  for (let at = 0; at < big.length; at += 65536) sock.stream.push(Buffer.from(big.subarray(at, at + 65536)));
  sock.stream.push(encodeFrame(0x05, 0, 8, 0, '', ''));
  await tick();
  flush();
  assert.equal(sock.out.map((o) => [o.kind, o.id, o.aux, o.message]), [[KIND_ERROR, 7, 0x04, 'ENOBUFS']]);
  assert.equal(frames.map((f) => f.id), [8]);
  assert.equal(closed, []);
  assert.equal([host.budget.partial, host.budget.refused], [0, 1]);
});

test('a hello that does not fit the budget is fatal (ENOBUFS)', async () => {
  const { host, closed } = fakeHost({ budget: new MemoryBudget(64 << 20, 65536, () => 0) });
  const sock = fakeSocket();
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  sock.stream.push(Buffer.from(encodeFrame(0x01, 0, 1, 1, '', 'x', Buffer.alloc(200_000)).subarray(0, 100_000)));
  await tick();
  assert.equal([sock.out[0]?.kind, sock.out[0]?.id, sock.out[0]?.message], [KIND_ERROR, 0, 'ENOBUFS']);
  assert.equal(closed, [conn]);
});

test('a small frame viewing a large read chunk is queued as its own bytes: counted and held agree', async () => {
  const { host, flush } = fakeHost({ maxQueueBytes: 1 << 20 });
  const sock = fakeSocket({ highWaterMark: 1024, slow: true });
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  for (let i = 1; i <= 50; i++) {
    // One 64-byte frame per tick, each a view into its own 64 KiB read chunk.
    const chunk = Buffer.alloc(65536);
    msgFrame(i, 46).copy(chunk, 1000);
    assert.ok(conn.deliver(chunk.subarray(1000, 1064)));
    flush();
  }
  const held = conn.heldBytes();
  assert.ok(held <= 50 * 64, `held ${held}: no read chunk is pinned`);
  assert.ok(conn.queuedBytes >= held, 'what is counted covers what is held');
  assert.ok(conn.queuedBytes <= 50 * (64 + BUFFER_OVERHEAD), `counted ${conn.queuedBytes}: the frame's size plus the overhead per buffer`);
  assert.is(host.budget.queued, conn.queuedBytes);
  sock.release();
  await tick();
  sock.release();
  await tick();
  assert.equal([conn.queuedBytes, host.budget.queued], [0, 0]);
});

test('closing a connection gives its queued bytes back to the budget', () => {
  const { host, flush } = fakeHost({ maxQueueBytes: 1 << 20 });
  const sock = fakeSocket({ highWaterMark: 1024, slow: true });
  const conn = new Connection(host, sock.stream, 1, 'test', 60_000);
  conn.opened();
  for (let i = 1; i <= 20; i++) conn.deliver(msgFrame(i));
  flush();
  for (let i = 21; i <= 30; i++) conn.deliver(msgFrame(i));
  assert.ok(host.budget.queued > 0);
  sock.stream.destroy();
  conn.fatal('EPROTO', 'x');
  assert.is(host.budget.queued, 0);
});

test.run();
