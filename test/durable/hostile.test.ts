// SPEC §8 for SPEC §10: a raw peer's acks, retains and queued sends cannot hurt the broker or another client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../runtime/index.js';
import { cleanup, tempDir, waitFor } from '../helpers/procs.js';
import { K, RawConn, rawFrame } from '../helpers/raw.js';
import { durableBroker } from './helpers.js';

test.after.each(() => cleanup());

const ACK = 0x0e;
const RETAIN = 0x10;
const SHM = 0x20;
const WANT = 0x01;
// QCOP_HOSTILE_SEED replays the stray acks' ids; the seed is printed first.
const SEED = Number(process.env.QCOP_HOSTILE_SEED || Date.now() % 2 ** 31) >>> 0;
console.log(`durable hostile: seed ${SEED} (replay with QCOP_HOSTILE_SEED=${SEED})`);
/** A seeded 32-bit generator (xorshift32). */
let state = SEED || 1;
const next32 = (): number => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>>= 0);
};

test('stray acks, shm descriptors without a pool, oversized retains: each refused or ignored, nothing stored lost', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'], maxRetainedBytes: 1000 });
  const good = await connect({ socket: broker.socket });
  for (let i = 0; i < 3; i++) await good.deliver('app/keep', 'n(int)', i);
  const raw = await RawConn.greeted(broker.socket, ['lost', 'call', 'watch']);
  // Acks of ids this connection never got: ignored, no answer, connection open.
  for (let i = 0; i < 200; i++) await raw.write(rawFrame(ACK, 0, next32(), next32(), '', ''));
  await raw.write(rawFrame(ACK, 0xff, 1, 1, 'app/keep', 'x', Buffer.alloc(10)));
  // A descriptor without a pool to a queued channel, and to retain: EBADSLOT, nothing stored.
  const shmSend = await raw.request(K.Send, SHM | WANT, 0, 'app/keep', 'x()', Buffer.alloc(16));
  assert.equal([shmSend.kind, shmSend.message], [K.Error, 'EBADSLOT']);
  const shmRetain = await raw.request(K.Send, SHM | RETAIN | WANT, 0, 'cfg/x', 'x()', Buffer.alloc(16));
  assert.equal([shmRetain.kind, shmRetain.message], [K.Error, 'EBADSLOT']);
  // A retained value past maxRetainedBytes: ENOBUFS.
  const big = await raw.request(K.Send, RETAIN | WANT, 0, 'cfg/big', 'x()', Buffer.alloc(2000, 0x41));
  assert.equal([big.kind, big.message], [K.Error, 'ENOBUFS']);
  assert.not.ok(raw.closed);
  // The raw peer listens, takes the stored messages and never acknowledges; then it vanishes.
  const l = await raw.request(K.Listen, 0, 0, 'app/keep', '');
  assert.is(l.kind, K.Result);
  await raw.until(() => raw.frames.filter((f) => f.kind === K.Msg).length >= 3, 10_000);
  raw.socket.destroy();
  const got: Array<[unknown, boolean]> = [];
  const h = good.listen('app/keep', (m) => void got.push([m.data, m.redelivered]));
  await h.ready;
  await waitFor(() => got.length === 3, 10_000, 'the three stored messages');
  assert.equal(got, [[0, true], [1, true], [2, true]]);
  const s = (await good.stats() as any).durable;
  await waitFor(async () => (await good.stats() as any).durable.storedMessages === 0, 10_000, 'acknowledged');
  assert.is(s.retained.values, 0);
  await good.close();
});

test.run();
