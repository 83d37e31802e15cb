// The SIGBUS fault guard (docs/SHM.md §10): a mapping whose file shrinks turns into zero pages instead of
// killing the process, the library notices and never hands those zeros over as a message's data.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ReceivedMessage } from '../../runtime/index.js';
import { native } from '../../runtime/native/index.js';
import { createPoolSegment, mapPoolView } from '../../runtime/shm/pool-segment.js';
import { waitFor } from '../helpers/procs.js';
import { purge, uniqueKey } from './helpers.js';
import { pool } from './pool-env.js';

const MiB = 1 << 20;
const ownPool = () => fs.readdirSync('/dev/shm').filter((e) => e.includes(`qcop-pool.${process.pid}-`));

test.after.each(async () => {
  await pool.teardown();
  purge();
});

test('a view whose file is shrunk reads zeros, is poisoned and no longer intact; the process lives', () => {
  const seg = createPoolSegment(uniqueKey('guard'), MiB);
  try {
    seg.reserve(MiB);
    seg.buffer.fill(9);
    const view = mapPoolView(seg.name);
    assert.ok(view.intact(0, MiB));
    const before = native().guardFaults();
    fs.truncateSync(`/dev/shm${seg.name}`, 0);
    assert.not.ok(view.intact(0, 16), 'fstat sees the shrink before any fault');
    let sum = 0;
    for (let i = 0; i < MiB; i += 4096) sum += view.buffer[i]!; // from JavaScript, through the zero-copy view
    assert.is(sum, 0, 'zero pages, not the lost bytes');
    assert.is(native().guardFaults(), before + 1, 'one fault, one mapping poisoned');
    assert.ok(native().poisoned(view.buffer.buffer as ArrayBuffer));
    fs.truncateSync(`/dev/shm${seg.name}`, 2 * MiB);
    assert.not.ok(view.intact(0, 16), 'a poisoned mapping stays untrusted even when the file grows back');
    view.close();
  } finally {
    seg.close();
  }
});

test('a held message whose segment the sender shrank: msg.data throws EBADSLOT, the loss is told once', async () => {
  const socket = await pool.setup();
  const tx = await pool.client(socket);
  const rx = await pool.client(socket);
  const lost: number[] = [];
  rx.on('lost', ({ count }: { count: number }) => lost.push(count));
  let held: ReceivedMessage | null = null;
  let done = () => {};
  const l = rx.listen('guard/held', (msg) => {
    held = msg;
    done = msg.hold();
  });
  await l.ready;
  assert.ok(tx.send('guard/held', 'blob', Buffer.alloc(MiB, 3)));
  await tx.flush();
  await waitFor(() => held !== null, 5000, 'the message');
  const msg = held as unknown as ReceivedMessage;
  assert.ok(msg.shared);
  for (const e of ownPool()) fs.truncateSync(`/dev/shm/${e}`, 0);
  assert.throws(() => msg.data, (e: { code?: string }) => e.code === 'EBADSLOT');
  assert.throws(() => msg.copyData(), (e: { code?: string }) => e.code === 'EBADSLOT');
  assert.equal(lost, [1], 'told once');
  done();
});

test('a handler cut short by EBADSLOT is a lost message, not an exception out of the client', async () => {
  const socket = await pool.setup();
  const tx = await pool.client(socket);
  const rx = await pool.client(socket);
  const lost: number[] = [];
  rx.on('lost', ({ count }: { count: number }) => lost.push(count));
  const seen: number[] = [];
  const l = rx.listen('guard/cut', (msg) => {
    // Shrinks its own segment under the message being read (as a hostile sender would from afar).
    if (msg.message === 'spoiled') for (const e of ownPool()) fs.truncateSync(`/dev/shm/${e}`, 0);
    seen.push((msg.data as Buffer).length);
  });
  await l.ready;
  tx.send('guard/cut', 'spoiled', Buffer.alloc(MiB, 1));
  await tx.flush();
  await waitFor(() => lost.length === 1, 5000, 'the loss');
  assert.equal(seen, [], 'the handler never got the zeros');
  // A sender whose pool was shrunk: its next large send is refused by the broker (EBADSLOT) or goes through a fresh pool.
  const errors: string[] = [];
  tx.on('error', (e: { code?: string }) => errors.push(e.code ?? ''));
  tx.send('guard/cut', 'after', Buffer.alloc(MiB, 2));
  await tx.flush();
  await waitFor(() => errors.length > 0 || seen.length > 0, 5000, 'the send after');
  assert.ok(errors.every((c) => c === 'EBADSLOT'), errors.join());
});

test('a pool segment shrunk under its producer is not grown back: the next send that needs more of it goes through a fresh segment', async () => {
  const socket = await pool.setup();
  const tx = await pool.client(socket);
  const rx = await pool.client(socket);
  const errors: string[] = [];
  tx.on('error', (e: { code?: string }) => errors.push(e.code ?? ''));
  const got: Buffer[] = [];
  let lost = 0;
  rx.on('lost', ({ count }: { count: number }) => (lost += count));
  const l = rx.listen('guard/regrow', (msg) => got.push(msg.copyData() as Buffer));
  await l.ready;
  // A small large message reserves the segment's first MiB only; once it is freed, the file is cut to nothing.
  tx.send('guard/regrow', 'first', Buffer.alloc(200 << 10, 1));
  await tx.flush();
  await waitFor(() => got.length === 1 && tx.poolInUse.slots === 0, 5000, 'the first message and its free');
  const before = ownPool();
  assert.is(before.length, 1, `one segment: ${before}`);
  fs.truncateSync(`/dev/shm/${before[0]}`, 0);
  // 3 MiB need more of the segment than was reserved: the producer withdraws it rather than extend the file.
  const big = Buffer.alloc(3 * MiB, 7);
  tx.send('guard/regrow', 'second', big);
  await tx.flush();
  await waitFor(() => got.length === 2 || lost > 0, 5000, 'the second message');
  assert.is(lost, 0);
  assert.equal(errors, []);
  assert.ok(got[1]!.equals(big), 'the second message intact');
  const after = ownPool();
  assert.ok(after.length === 1 && after[0] !== before[0], `a fresh segment took over: ${before} → ${after}`);
});

test('a SIGBUS that is not a fault in a guarded mapping still ends the process (the guard chains to the default)', () => {
  const addon = JSON.stringify(`${process.cwd()}/prebuilds/linux-${process.arch}/qcop_native.node`);
  const name = `/qcop-guard-chain-${process.pid}`;
  // One mapping installs the guard; then a SIGBUS sent with kill(), which no mapping explains.
  const script = `const m = require(${addon}); const fd = m.shmOpen('${name}', m.flags.O_RDWR | m.flags.O_CREAT, 0o600);` +
    `m.shmUnlink('${name}'); m.ftruncate(fd, 4096); m.mmap(fd, 4096, 0, false);` +
    `process.kill(process.pid, 'SIGBUS'); setTimeout(() => {}, 1000);`;
  const r = spawnSync(process.execPath, ['-e', script]);
  assert.is(r.signal, 'SIGBUS', `stderr: ${r.stderr}`);
});

test.run();
