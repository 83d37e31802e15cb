// Bad input from a raw peer: each gets an error frame with a code; a broken stream is closed; nobody else notices.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Kind, PROTOCOL_VERSION } from '../../runtime/protocol/constants.js';
import { encodeFrame } from '../../runtime/protocol/frame.js';
import { connect, startBroker, type Broker, type Client } from '../../runtime/index.js';
import { cleanup, tempDir, waitFor } from '../helpers/procs.js';
import { RawConn, rawFrame } from '../helpers/raw.js';

let broker: Broker;
let socket: string;
let sentinel: { tx: Client; rx: Client; got: number[]; sent: number };

test.before.each(async () => {
  socket = path.join(tempDir(), 'q.sock');
  broker = await startBroker({ socket, maxListeners: 4, logLevel: 'error' });
  const tx = await connect({ socket });
  const rx = await connect({ socket });
  const got: number[] = [];
  await rx.listen('sentinel', (m) => got.push(m.data as number)).ready;
  sentinel = { tx, rx, got, sent: 0 };
});

test.after.each(async () => {
  // The sentinel pair kept working through whatever the raw peer did.
  for (let i = 0; i < 10; i++) sentinel.tx.send('sentinel', 'n(int)', sentinel.sent++);
  await sentinel.tx.flush();
  await waitFor(() => sentinel.got.length === sentinel.sent, 3000, 'sentinel messages');
  assert.equal(sentinel.got, [...Array(sentinel.sent).keys()]);
  await sentinel.tx.close();
  await sentinel.rx.close();
  await broker.close();
  cleanup();
});

const FATAL: Array<[string, Buffer, string, boolean]> = [
  ['a 4 GiB length prefix', Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]), 'EMSGSIZE', true],
  ['a length below the header', Buffer.from([4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 'EPROTO', true],
  ['name fields overrunning the frame', (() => { const b = encodeFrame(Kind.Send, 0, 1, 0, 'abc', 'm()'); b[6] = 200; return b; })(), 'EPROTO', true],
  ['a second hello', encodeFrame(Kind.Hello, 0, 1, PROTOCOL_VERSION, '', 'again'), 'EPROTO', true],
];

for (const [what, bytes, code] of FATAL) {
  test(`${what}: error ${code}, then the connection is closed`, async () => {
    const peer = await RawConn.greeted(socket);
    await peer.write(bytes);
    assert.is((await peer.errorCode()).code, code);
    assert.ok(await peer.waitClosed(), 'closed');
  });
}

test('a frame before hello: EPROTO and closed', async () => {
  const peer = await RawConn.open(socket);
  await peer.write(encodeFrame(Kind.Send, 0, 1, 0, 'a', 'm()'));
  assert.is((await peer.errorCode()).code, 'EPROTO');
  assert.ok(await peer.waitClosed());
});

test('a hello of an unknown protocol version: ENOTSUP and closed', async () => {
  const peer = await RawConn.open(socket);
  await peer.write(encodeFrame(Kind.Hello, 0, 1, 99, '', 'future'));
  assert.is((await peer.errorCode()).code, 'ENOTSUP');
  assert.ok(await peer.waitClosed());
});

const REQUEST_ERRORS: Array<[string, Buffer, string]> = [
  ['an unknown kind', encodeFrame(0x30 as Kind, 0, 7, 0, '', ''), 'ENOTSUP'],
  ['a broker-to-client kind', encodeFrame(Kind.Msg, 0, 7, 0, 'a', 'm()'), 'ENOTSUP'],
  ['a channel with NUL', rawFrame(Kind.Send, 0, 7, 0, Buffer.from('a\0b'), Buffer.from('m()')), 'EINVAL'],
  ['a channel of invalid UTF-8', rawFrame(Kind.Send, 0, 7, 0, Buffer.from([0x61, 0xc3, 0x28]), Buffer.from('m()')), 'EINVAL'],
  ['a message of invalid UTF-8', rawFrame(Kind.Send, 0, 7, 0, Buffer.from('a'), Buffer.from([0xff])), 'EINVAL'],
  ['an empty channel', rawFrame(Kind.Send, 0, 7, 0, Buffer.alloc(0), Buffer.from('m()')), 'EINVAL'],
  ['an empty segment', encodeFrame(Kind.Listen, 0, 7, 0, 'a//b', ''), 'EINVAL'],
  ['a send to a pattern', encodeFrame(Kind.Send, 0, 7, 0, 'a/*', 'm()'), 'EINVAL'],
  ['a reply to a call that does not exist', encodeFrame(Kind.Reply, 0, 12345, 0, '', ''), 'ENOCALL'],
];

for (const [what, bytes, code] of REQUEST_ERRORS) {
  test(`${what}: error ${code} for that request; the connection stays open`, async () => {
    const peer = await RawConn.greeted(socket);
    await peer.write(bytes);
    const err = await peer.errorCode();
    assert.is(err.code, code);
    assert.ok(err.text.length > 0, 'a reason');
    await peer.write(encodeFrame(Kind.Query, 0, 8, 0, 'still/open', ''));
    const answer = await peer.next((f) => f.kind === Kind.Result && f.id === 8);
    assert.is(answer.aux, 0);
    peer.socket.destroy();
  });
}

test('too many listeners: ELIMIT for the extra one; the others keep working', async () => {
  const peer = await RawConn.greeted(socket);
  for (let i = 1; i <= 5; i++) await peer.write(encodeFrame(Kind.Listen, 0, i, 0, `l/${i}`, ''));
  const err = await peer.errorCode();
  assert.is(err.code, 'ELIMIT');
  assert.is(err.id, 5);
  for (let i = 1; i <= 4; i++) await peer.next((f) => f.kind === Kind.Result && f.id === i);
  assert.is(await sentinel.tx.deliver('l/1', 'm()'), 1);
  peer.socket.destroy();
});

/** Restarts the broker with `options`; the sentinels reconnect (they are checked after each test). */
async function restart(options: Parameters<typeof startBroker>[0]): Promise<void> {
  await broker.close();
  broker = await startBroker({ socket, logLevel: 'error', ...options });
  await waitFor(() => sentinel.tx.connected && sentinel.rx.connected, 5000, 'sentinels back');
  await sentinel.rx.flush();
}

test('no hello within the handshake time: EPROTO and closed', async () => {
  await restart({ handshakeTimeoutMs: 100 });
  const peer = await RawConn.open(socket);
  assert.is((await peer.errorCode()).code, 'EPROTO');
  assert.ok(await peer.waitClosed());
});

test('a frame left incomplete past partialFrameTimeoutMs: ETIMEDOUT and closed', async () => {
  await restart({ partialFrameTimeoutMs: 100 });
  const peer = await RawConn.greeted(socket);
  await peer.write(encodeFrame(Kind.Send, 0, 1, 0, 'a', 'm()', Buffer.alloc(1000)).subarray(0, 600));
  const err = await peer.errorCode();
  assert.equal([err.code, err.id], ['ETIMEDOUT', 0]);
  assert.ok(await peer.waitClosed());
});

test('a frame arriving in pieces past maxPartialBytes: ENOBUFS for that request, its bytes skipped, the connection goes on', async () => {
  await restart({ maxFrameBytes: 200_000, maxPartialBytes: 200_000 });
  const holder = await RawConn.greeted(socket);
  const peer = await RawConn.greeted(socket);
  const big = (id: number) => encodeFrame(Kind.Send, 0, id, 0, 'nobody/here', 'm()', Buffer.alloc(190_000));
  await holder.write(big(1).subarray(0, 150_000));
  await waitFor(() => (broker.stats().memory as any).partialBytes >= 150_000, 3000, 'the first frame held');
  const second = big(2);
  await peer.write(second.subarray(0, 150_000));
  const err = await peer.errorCode();
  assert.equal([err.code, err.id], ['ENOBUFS', 2]);
  await peer.write(Buffer.concat([second.subarray(150_000), encodeFrame(Kind.Flush, 0, 3, 0, '', '')]));
  const flushed = await peer.next((f) => f.kind === Kind.Result && f.id === 3);
  assert.is(flushed.aux, 0, 'the refused send was not counted');
  holder.socket.destroy();
  peer.socket.destroy();
});

test('calls past maxCallsInFlight: ELIMIT for each extra call, the connection stays open', async () => {
  await restart({ maxCallsInFlight: 2 });
  const listener = await RawConn.greeted(socket);
  await listener.write(encodeFrame(Kind.Listen, 0, 1, 0, 'svc/slow', ''));
  await listener.next((f) => f.kind === Kind.Result && f.id === 1);
  const caller = await RawConn.greeted(socket);
  for (let id = 1; id <= 4; id++) await caller.write(encodeFrame(Kind.Call, 0, id, 60_000, 'svc/slow', 'm()'));
  const refused = [await caller.errorCode(), await caller.errorCode()];
  assert.equal(refused.map((e) => [e.code, e.id]), [['ELIMIT', 3], ['ELIMIT', 4]]);
  // One answer frees a place.
  const asked = await listener.next((f) => f.kind === Kind.Msg);
  await listener.write(encodeFrame(Kind.Reply, 0, asked.id, 0, '', ''));
  await caller.next((f) => f.kind === Kind.Result && f.id === 1);
  await caller.write(encodeFrame(Kind.Call, 0, 5, 60_000, 'svc/slow', 'm()'));
  await waitFor(() => listener.frames.filter((f) => f.kind === Kind.Msg).length === 2, 3000, 'the listener asked the next call');
  assert.equal((broker.stats().calls as any).pending, 2);
  assert.equal(caller.frames.filter((f) => f.kind === Kind.Error), [], 'no more refusals');
  listener.socket.destroy();
  caller.socket.destroy();
});

test('a send past maxMemoryBytes: the sender hears ENOBUFS; what is queued is not dropped', async () => {
  await restart({ maxMemoryBytes: 1 << 20, maxQueueBytes: 8 << 20 });
  const stuck = await RawConn.greeted(socket);
  await stuck.write(encodeFrame(Kind.Listen, 0, 1, 0, 'fill/ch', ''));
  await stuck.next((f) => f.kind === Kind.Result && f.id === 1);
  stuck.socket.pause();
  const tx = await connect({ socket });
  const errors: string[] = [];
  tx.on('error', (e: any) => errors.push(e.code));
  for (let i = 0; i < 1000; i++) {
    tx.send('fill/ch', 'm()', Buffer.alloc(4000));
    if (i % 50 === 49) await tx.flush();
  }
  await tx.flush();
  assert.ok(errors.length > 0 && errors.every((c) => c === 'ENOBUFS'), `${errors.length} refusals: ${errors[0]}`);
  const st = broker.stats() as any;
  assert.is(st.dropped.slowConsumer, 0);
  assert.ok(st.memory.countedBytes <= (1 << 20) + 4096, `${st.memory.countedBytes} counted`);
  stuck.socket.destroy();
  await tx.close();
});

test.run();
