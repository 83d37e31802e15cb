// send(..., { transfer: true }) (docs/SHM.md §9): bytes handed over wait for a pool slot as they are, and are
// copied once, with their byte-string head, into the slot when one frees; without it a send keeps its own copy.
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from '../helpers/procs.js';
import { pool } from './pool-env.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MiB = 1 << 20;

test.after.each(pool.teardown);

test('handed-over buffers reach a receiver process intact and in order through a small pool, a small send last', async () => {
  const socket = await pool.setup();
  const rx = await pool.receiver(socket, 'big/handed');
  // An 8 MiB pool carries up to 2 MiB a message (a quarter of it).
  const tx = await pool.client(socket, { maxPoolBytes: 8 * MiB, highWaterMark: 4 * MiB });
  // 700 KiB to 2 MiB, 11 MiB in all: some wait for a slot; sizes differ so that a head or an offset off by one shows.
  const payloads = [700 << 10, MiB, 2 * MiB - 64, 900 << 10, 1.5 * MiB + 1, MiB - 1, 1234567, 2 * MiB - 64].map((n) => randomBytes(n));
  let waited = 0;
  for (const p of payloads) {
    if (tx.send('big/handed', 'blob', p, { transfer: true })) continue;
    waited++;
    await new Promise((r) => tx.once('drain', r));
  }
  assert.ok(waited > 0, 'some sends waited for a slot');
  tx.send('big/handed', 'small', Buffer.from('last'));
  assert.equal(await tx.flush(), { messages: payloads.length + 1, unrouted: 0 });
  await waitFor(() => rx.json().filter((v) => v.ev === 'msg').length === payloads.length + 1, 20000, 'every message');
  const got = rx.json().filter((v) => v.ev === 'msg');
  assert.equal(got.map((v) => v.sha), [...payloads.map(sha), sha(Buffer.from('last'))]);
  assert.equal(got.map((v) => v.len), [...payloads.map((p) => p.length), 4]);
  assert.ok(got.slice(0, -1).every((v) => v.shared === true), 'every large one by descriptor');
  assert.is(rx.json().filter((v) => v.ev === 'lost').length, 0);
  const s = (await tx.stats()).shm as Record<string, number>;
  assert.is(s.inlined, 0);
});

test('a handed-over buffer waiting for a slot is the caller\'s own; without transfer the send keeps what it was given', async () => {
  const socket = await pool.setup();
  const rx = await pool.receiver(socket, 'big/own');
  // A 4 MiB pool: four sends of 900 KiB in one tick fill it until the broker frees their slots (nobody
  // listens on big/nobody), so the next ones wait in the client for a slot. The receiver then holds at
  // most two at a time, below a quarter of the pool, so it is never dropped for (PROTOCOL 8.5).
  const tx = await pool.client(socket, { maxPoolBytes: 4 * MiB, highWaterMark: 16 * MiB });
  const size = 900 << 10;
  const first = [0, 1, 2, 3].map((i) => Buffer.alloc(size, i));
  for (const b of first) tx.send('big/nobody', 'first', b);
  const handed = Buffer.alloc(size, 4);
  const copied = Buffer.alloc(size, 5);
  tx.send('big/own', 'handed', handed, { transfer: true });
  tx.send('big/own', 'copied', copied);
  assert.ok(tx.bufferedBytes >= 2 * size, `both wait in the client: ${tx.bufferedBytes}`);
  // What the documentation tells the caller not to do, to show which bytes each send holds.
  handed.fill(7);
  copied.fill(8);
  await tx.flush();
  await waitFor(() => rx.json().filter((v) => v.ev === 'msg').length === 2, 10000, 'the two waiting messages').catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(rx.json().map((v) => [v.ev, v.message, v.count]))}`);
  });
  const later = rx.json().filter((v) => v.ev === 'msg');
  assert.equal(later.map((v) => [v.message, v.sha]), [['handed', sha(Buffer.alloc(size, 7))], ['copied', sha(Buffer.alloc(size, 5))]]);
});

test('transfer with data the pool does not carry (small, or shm off) sends them as usual', async () => {
  const socket = await pool.setup();
  const tx = await pool.client(socket, { shm: false });
  const rx = await pool.client(socket);
  const got: number[] = [];
  const l = rx.listen('t/plain', (msg) => got.push((msg.data as Buffer).length));
  await l.ready;
  tx.send('t/plain', 'small', Buffer.alloc(100, 1), { transfer: true });
  tx.send('t/plain', 'inline', Buffer.alloc(200 << 10, 1), { transfer: true });
  await tx.flush();
  await waitFor(() => got.length === 2, 5000, 'both');
  assert.equal(got, [100, 200 << 10]);
});

test.run();
