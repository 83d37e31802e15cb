// Zero-copy sends (docs/SHM.md §9): client.loan() hands out pool memory the sender fills in place; send() writes only a descriptor.
import { createHash, randomFillSync } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startBroker } from '../../runtime/index.js';
import { waitFor } from '../helpers/procs.js';
import { pool } from './pool-env.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MiB = 1 << 20;





test.after.each(pool.teardown);

test('1 MiB and 16 MiB written in place into loans reach four receiver processes intact; only descriptors are written', async () => {
  const socket = await pool.setup();
  const rx = await Promise.all([0, 1, 2, 3].map(() => pool.receiver(socket, 'cam/frame')));
  const tx = await pool.client(socket);
  const sums: string[] = [];
  for (const size of [MiB, 16 * MiB, MiB, 16 * MiB]) {
    let b = tx.loan(size);
    while (!b) {
      await new Promise((r) => tx.once('drain', r));
      b = tx.loan(size);
    }
    assert.ok(tx.poolInUse.bytes >= size, 'the loan is pool memory');
    randomFillSync(b);
    sums.push(sha(b));
    // A producer that waits for 'drain' never gets a receiver that keeps up dropped for.
    if (!tx.send('cam/frame', 'frame', b)) await new Promise((r) => tx.once('drain', r));
  }
  // A prefix of a loan is sent as it is: the message is exactly the bytes the sender filled.
  const part = tx.loan(2 * MiB)!;
  randomFillSync(part, 0, 300_000);
  sums.push(sha(part.subarray(0, 300_000)));
  tx.send('cam/frame', 'frame', part.subarray(0, 300_000));
  assert.equal(await tx.flush(), { messages: 5, unrouted: 0 });
  for (const r of rx) {
    await waitFor(() => r.json().filter((v) => v.ev === 'msg').length === 5, 20000, 'every frame').catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(r.json().map((v) => v.ev))}`);
    });
    const got = r.json().filter((v) => v.ev === 'msg');
    assert.equal(got.map((v) => v.sha), sums);
    assert.ok(got.every((v) => v.shared === true), 'delivered by descriptor');
  }
  await waitFor(() => tx.poolInUse.slots === 0, 5000, 'every slot freed');
  const s = (await tx.stats()).shm as Record<string, number>;
  assert.equal([s.messages, s.inlined], [5, 0]);
});

test('loans: small or impossible sizes, shm off, giving back, a full pool', async () => {
  const socket = await pool.setup();
  const tx = await pool.client(socket, { maxPoolBytes: 8 * MiB });
  assert.throws(() => tx.loan(-1), /EINVAL/);
  assert.throws(() => tx.loan(1.5), /EINVAL/);
  assert.throws(() => tx.loan(4 * MiB), /EMSGSIZE.*maxPoolBytes/, 'more than a quarter of the pool and the frame limit: refused before allocating');
  const small = tx.loan(100)!;
  assert.is(tx.poolInUse.slots, 0, 'at or below shmThreshold a loan is an ordinary buffer');
  small.fill(1);
  const off = await pool.client(socket, { shm: false });
  const plain = off.loan(512 << 10)!;
  assert.is(off.poolInUse.slots, 0, 'without the pool, an ordinary buffer');
  assert.throws(() => off.loan(2 * MiB), /EMSGSIZE.*shm: false/);
  const a = tx.loan(MiB)!;
  assert.is(tx.poolInUse.slots, 1);
  assert.ok(tx.unloan(a));
  assert.not.ok(tx.unloan(a), 'given back once');
  assert.not.ok(tx.unloan(Buffer.alloc(10)), 'an ordinary buffer is no loan');
  assert.is(tx.poolInUse.slots, 0);
  // Nobody listens: the broker frees each slot as soon as it routed the descriptor. Loans not yet sent fill the pool.
  const held: Buffer[] = [];
  for (let b; (b = tx.loan(2 * MiB - 64)); ) held.push(b);
  assert.is(held.length, 4, 'four quarter-pool loans fill 8 MiB');
  let drained = false;
  tx.once('drain', () => (drained = true));
  tx.send('nobody', 'frame', held.pop());
  assert.ok(tx.unloan(held.pop()!));
  await tx.flush();
  await waitFor(() => drained, 5000, "'drain' after a null loan");
  assert.ok(tx.loan(2 * MiB - 64), 'a slot is free again');
  assert.ok(off.send('x', 'y', plain) && tx.send('x', 'y', small), 'ordinary loans send as usual');
});

test('loans waiting behind held sends cost no client memory; a send refused with ENOBUFS leaves its loan to the caller', async () => {
  const socket = await pool.setup();
  const tx = await pool.client(socket, { maxPoolBytes: 4 * MiB, highWaterMark: MiB });
  const loans = [0, 1, 2, 3].map(() => tx.loan(MiB - 8)!);
  assert.ok(loans.every((b) => b && b.length === MiB - 8), 'four loans fill the 4 MiB pool');
  assert.not.ok(tx.send('full', 'blob', Buffer.alloc(900 << 10)), 'no slot: held');
  for (const b of loans.slice(2)) assert.not.ok(tx.send('full', 'frame', b), 'a loan waits behind the held send, in order');
  assert.ok(tx.bufferedBytes < MiB, `only the held copy counts (${tx.bufferedBytes} bytes)`);
  assert.not.ok(tx.send('full', 'blob', Buffer.alloc(900 << 10)));
  assert.throws(() => tx.send('full', 'frame', loans[0]), /ENOBUFS/, 'past the high-water mark');
  assert.ok(tx.unloan(loans[0]!), 'the refused loan is still outstanding');
  assert.not.ok(tx.send('full', 'frame', loans[1]));
  assert.equal(await tx.flush(), { messages: 5, unrouted: 5 }, 'everything else was routed');
});

test('a loan outstanding while the broker restarts is sent, as a copy, to the new broker', async () => {
  const socket = await pool.setup();
  const tx = await pool.client(socket);
  const rx = await pool.client(socket);
  const got: string[] = [];
  const l = rx.listen('restart', (m) => got.push(sha(m.data as Buffer)));
  await l.ready;
  const b = tx.loan(MiB)!;
  randomFillSync(b);
  const sum = sha(b);
  const back = Promise.all([tx, rx].map((c) => new Promise((r) => c.once('reconnected', r))));
  await pool.broker!.close();
  pool.broker = await startBroker({ socket });
  await back;
  assert.is(b.length, MiB, 'the loan stayed mapped');
  tx.send('restart', 'frame', b);
  assert.equal(await tx.flush(), { messages: 1, unrouted: 0 });
  await waitFor(() => got.length === 1, 5000, 'the frame');
  assert.equal(got, [sum]);
  assert.is(b.length, 0, 'the old segment is gone once its loan was sent');
});

test('msg.data of a shared message is zero copy (a view of the mapping); copyData() is the receiver\'s own', async () => {
  const socket = await pool.setup();
  const tx = await pool.client(socket);
  const rx = await pool.client(socket);
  const seen: Array<{ view: Buffer; copy: Buffer }> = [];
  const l = rx.listen('view', (m) => seen.push({ view: m.data as Buffer, copy: m.copyData() as Buffer }));
  await l.ready;
  const first = Buffer.alloc(MiB, 1);
  tx.send('view', 'a', first);
  await waitFor(() => seen.length === 1 && tx.poolInUse.slots === 0, 5000, 'the first message and its slot back');
  assert.ok(seen[0]!.view.buffer.byteLength >= 16 * MiB, 'data points into the mapped segment');
  assert.is(seen[0]!.copy.buffer.byteLength < 2 * MiB, true, 'copyData() has its own memory');
  assert.is(sha(seen[0]!.copy), sha(first));
  tx.send('view', 'b', Buffer.alloc(MiB, 2));
  await waitFor(() => seen.length === 2, 5000, 'the second message');
  assert.is(sha(seen[0]!.copy), sha(first), 'the copy outlives the slot it came from');
});

test.run();
