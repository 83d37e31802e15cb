// Bad input from a raw peer: each gets an error frame with a code; a broken stream is closed; nobody else notices.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Kind, PROTOCOL_VERSION } from '../../runtime/protocol/constants.js';
import { encodeFrame } from '../../runtime/protocol/frame.js';
import { connect, startBroker, type Broker, type Client } from '../../runtime/index.js';
import { cleanup, tempDir, waitFor } from '../helpers/procs.js';
import { RawPeer, frameWithRawNames } from '../helpers/raw.js';

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
    const peer = await RawPeer.open(socket);
    peer.write(bytes);
    assert.is((await peer.errorCode()).code, code);
    assert.ok(await peer.waitClosed(), 'closed');
  });
}

test('a frame before hello: EPROTO and closed', async () => {
  const peer = await RawPeer.open(socket, false);
  peer.write(encodeFrame(Kind.Send, 0, 1, 0, 'a', 'm()'));
  assert.is((await peer.errorCode()).code, 'EPROTO');
  assert.ok(await peer.waitClosed());
});

test('a hello of an unknown protocol version: ENOTSUP and closed', async () => {
  const peer = await RawPeer.open(socket, false);
  peer.write(encodeFrame(Kind.Hello, 0, 1, 99, '', 'future'));
  assert.is((await peer.errorCode()).code, 'ENOTSUP');
  assert.ok(await peer.waitClosed());
});

const REQUEST_ERRORS: Array<[string, Buffer, string]> = [
  ['an unknown kind', encodeFrame(0x30 as Kind, 0, 7, 0, '', ''), 'ENOTSUP'],
  ['a broker-to-client kind', encodeFrame(Kind.Msg, 0, 7, 0, 'a', 'm()'), 'ENOTSUP'],
  ['a channel with NUL', frameWithRawNames(Kind.Send, 7, Buffer.from('a\0b'), Buffer.from('m()')), 'EINVAL'],
  ['a channel of invalid UTF-8', frameWithRawNames(Kind.Send, 7, Buffer.from([0x61, 0xc3, 0x28]), Buffer.from('m()')), 'EINVAL'],
  ['a message of invalid UTF-8', frameWithRawNames(Kind.Send, 7, Buffer.from('a'), Buffer.from([0xff])), 'EINVAL'],
  ['an empty channel', frameWithRawNames(Kind.Send, 7, Buffer.alloc(0), Buffer.from('m()')), 'EINVAL'],
  ['an empty segment', encodeFrame(Kind.Listen, 0, 7, 0, 'a//b', ''), 'EINVAL'],
  ['a send to a pattern', encodeFrame(Kind.Send, 0, 7, 0, 'a/*', 'm()'), 'EINVAL'],
  ['a reply to a call that does not exist', encodeFrame(Kind.Reply, 0, 12345, 0, '', ''), 'ENOCALL'],
];

for (const [what, bytes, code] of REQUEST_ERRORS) {
  test(`${what}: error ${code} for that request; the connection stays open`, async () => {
    const peer = await RawPeer.open(socket);
    peer.write(bytes);
    const err = await peer.errorCode();
    assert.is(err.code, code);
    assert.ok(err.text.length > 0, 'a reason');
    peer.write(encodeFrame(Kind.Query, 0, 8, 0, 'still/open', ''));
    const answer = await peer.next((f) => f.kind === Kind.Result && f.id === 8);
    assert.is(answer.aux, 0);
    peer.destroy();
  });
}

test('too many listeners: ELIMIT for the extra one; the others keep working', async () => {
  const peer = await RawPeer.open(socket);
  for (let i = 1; i <= 5; i++) peer.write(encodeFrame(Kind.Listen, 0, i, 0, `l/${i}`, ''));
  const err = await peer.errorCode();
  assert.is(err.code, 'ELIMIT');
  assert.is(err.id, 5);
  for (let i = 1; i <= 4; i++) await peer.next((f) => f.kind === Kind.Result && f.id === i);
  assert.is(await sentinel.tx.deliver('l/1', 'm()'), 1);
  peer.destroy();
});

test('no hello within the handshake time: EPROTO and closed', async () => {
  await broker.close();
  broker = await startBroker({ socket, handshakeTimeoutMs: 100, logLevel: 'error' });
  // The sentinels lost their broker: reconnect them before checking them afterwards.
  await waitFor(() => sentinel.tx.connected && sentinel.rx.connected, 5000, 'sentinels back');
  await sentinel.rx.flush();
  const peer = await RawPeer.open(socket, false);
  assert.is((await peer.errorCode()).code, 'EPROTO');
  assert.ok(await peer.waitClosed());
});

test.run();
