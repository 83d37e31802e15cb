// Bad shared-memory descriptors from a raw client speaking the protocol (PROTOCOL 8): error codes, connection stays open.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startBroker, type Broker } from '../../runtime/index.js';
import { Flag, Kind } from '../../runtime/protocol/constants.js';
import { decodeControl, encodeControl } from '../../runtime/protocol/control.js';
import { encodeFrame } from '../../runtime/protocol/frame.js';
import { createPoolSegment, type PoolSegment } from '../../runtime/shm/pool-segment.js';
import { cleanup, tempDir } from '../helpers/procs.js';
import { RawConn, type RawFrame } from '../helpers/raw.js';
import { RUN } from './helpers.js';

const FEATURES = ['lost', 'call', 'watch', 'shm'];
const code = (f: RawFrame) => (f.kind === Kind.Error ? f.message : 'ok');
const desc = (slot: number, segment: number, offset: number, length: number) => {
  const d = Buffer.alloc(16);
  d.writeUInt32LE(slot, 0); d.writeUInt32LE(segment, 4); d.writeUInt32LE(offset, 8); d.writeUInt32LE(length, 12);
  return d;
};

let broker: Broker | null = null;
const segs: PoolSegment[] = [];

test.after.each(async () => {
  for (const s of segs.splice(0)) s.close();
  await broker?.close();
  broker = null;
  cleanup();
});

test('descriptors outside the pool, of unannounced segments, of slots in use; releases twice or never received: EBADSLOT, and the connection goes on', async () => {
  const socket = path.join(tempDir(), 'qcop.sock');
  broker = await startBroker({ socket });
  const raw = await RawConn.greeted(socket, FEATURES);
  assert.is(code(await raw.request(Kind.Send, Flag.Shm, 0, 'ch', 'm()', desc(1, 0, 0, 10))), 'EBADSLOT', 'before any pool');
  const seg = createPoolSegment(`${RUN}/raw-pool`, 1 << 20);
  segs.push(seg);
  seg.buffer.write('hello shared world');
  const key = `${RUN}/raw-pool`;
  const ok = await raw.request(Kind.Pool, 0, 0, '', '', encodeControl({ key }));
  assert.equal([code(ok), ok.aux], ['ok', 1 << 20]);
  assert.is(code(await raw.request(Kind.Pool, 0, 0, '', '', encodeControl({ key }))), 'EBADSLOT', 'announced twice');
  assert.is(code(await raw.request(Kind.Pool, 0, 1, '', '', encodeControl({ key: `${RUN}/missing` }))), 'ENOENT');
  assert.is(code(await raw.request(Kind.Send, Flag.Shm, 0, 'ch', 'm()', desc(1, 0, (1 << 20) - 4, 10))), 'EBADSLOT', 'past the end');
  assert.is(code(await raw.request(Kind.Send, Flag.Shm, 0, 'ch', 'm()', desc(1, 0, 0xfffffff0, 0x20))), 'EBADSLOT', 'wrapping offset');
  assert.is(code(await raw.request(Kind.Send, Flag.Shm, 0, 'ch', 'm()', desc(1, 7, 0, 10))), 'EBADSLOT', 'unknown segment');
  assert.is(code(await raw.request(Kind.Send, Flag.Shm, 0, 'ch', 'm()', Buffer.alloc(5))), 'EBADSLOT', 'short descriptor');
  // A good one to ourselves: a descriptor arrives, the slot is ours until we release it.
  assert.is(code(await raw.request(Kind.Listen, 0, 0, 'ch', 'm()')), 'ok');
  await raw.write(encodeFrame(Kind.Send, Flag.Shm | Flag.WantCount, 50, 0, 'ch', 'm()', desc(9, 0, 6, 6)));
  const msg = await raw.next((f) => f.kind === Kind.Msg);
  assert.is(msg.flags & Flag.Shm, Flag.Shm);
  const p = msg.payload;
  const token = p.readUInt32LE(0);
  assert.equal([p.readUInt32LE(4), p.readUInt32LE(8), p.toString('utf8', 16)], [6, 6, seg.name]);
  assert.is((await raw.next((f) => f.id === 50)).aux, 1);
  assert.is(code(await raw.request(Kind.Send, Flag.Shm, 0, 'ch', 'm()', desc(9, 0, 0, 10))), 'EBADSLOT', 'slot still in use');
  assert.is(code(await raw.request(Kind.Release, 0, token + 1000, '', '')), 'EBADSLOT', 'never received');
  await raw.write(encodeFrame(Kind.Release, 0, 60, token, '', ''));
  assert.is((await raw.next((f) => f.kind === Kind.Freed)).aux, 9, 'freed back to the sender');
  assert.is(code(await raw.request(Kind.Release, 0, token, '', '')), 'EBADSLOT', 'released twice');
  // Still open and answering; the broker holds nothing.
  const stats = decodeControl((await raw.request(Kind.Stats, 0, 0, '', '')).payload);
  assert.is((stats.shm as Record<string, number>).slotsInUse, 0);
  assert.ok(!raw.socket.destroyed);
  raw.socket.destroy();
});

test('a connection without the shm feature cannot announce a pool (ENOTSUP) and gets large data inline', async () => {
  const socket = path.join(tempDir(), 'qcop.sock');
  broker = await startBroker({ socket });
  const raw = await RawConn.greeted(socket, ['lost']);
  assert.is(code(await raw.request(Kind.Pool, 0, 0, '', '', encodeControl({ key: `${RUN}/x` }))), 'ENOTSUP');
  const sender = await RawConn.greeted(socket, FEATURES);
  const seg = createPoolSegment(`${RUN}/raw-pool-2`, 1 << 20);
  segs.push(seg);
  seg.buffer.fill(0x5a, 0, 300 << 10);
  assert.is(code(await sender.request(Kind.Pool, 0, 3, '', '', encodeControl({ key: `${RUN}/raw-pool-2` }))), 'ok');
  assert.is(code(await raw.request(Kind.Listen, 0, 0, 'in', 'm()')), 'ok');
  await sender.write(encodeFrame(Kind.Send, Flag.Shm, 70, 0, 'in', 'm()', desc(1, 3, 0, 300 << 10)));
  const msg = await raw.next((f) => f.kind === Kind.Msg);
  assert.is(msg.flags & Flag.Shm, 0);
  assert.ok(msg.payload.equals(Buffer.alloc(300 << 10, 0x5a)), 'inline copy of the slot');
  assert.is((await sender.next((f) => f.kind === Kind.Freed)).aux, 1, 'freed at once: nobody holds it');
  raw.socket.destroy();
  sender.socket.destroy();
});

test('a pool others could write or read, or shrunk before it is announced, is refused; the connection goes on', async () => {
  const socket = path.join(tempDir(), 'qcop.sock');
  broker = await startBroker({ socket });
  const raw = await RawConn.greeted(socket, FEATURES);
  const announce = async (key: string, mode: number, size?: number) => {
    const seg = createPoolSegment(key, 1 << 20);
    segs.push(seg);
    fs.chmodSync(`/dev/shm${seg.name}`, mode);
    if (size !== undefined) fs.truncateSync(`/dev/shm${seg.name}`, size);
    return code(await raw.request(Kind.Pool, 0, segs.length, '', '', encodeControl({ key })));
  };
  assert.is(await announce(`${RUN}/mode-666`, 0o666), 'EACCES', 'writable by others');
  assert.is(await announce(`${RUN}/mode-620`, 0o620), 'EACCES', 'writable by the group');
  assert.is(await announce(`${RUN}/mode-604`, 0o604), 'EACCES', 'readable by others');
  assert.is(await announce(`${RUN}/mode-640`, 0o640), 'EACCES', 'readable by a group that is not the broker\'s');
  assert.is(await announce(`${RUN}/short`, 0o600, 8192), 'EINVAL', 'shorter than its header says');
  assert.is(await announce(`${RUN}/fine`, 0o600), 'ok');
  raw.socket.destroy();
});

test.run();
