// Behaviour of SharedMemory.lock across real processes: exact counting, crash recovery, turn-taking, timeouts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, openSync, writeSync } from 'node:fs';
import { SharedMemory, systemName } from '../../runtime/shm/index.js';
import { killChildren, leftovers, purge, spawnChild, uniqueKey, wallMs } from './helpers.js';

test.after.each(async () => {
  await killChildren();
  purge();
});

test('four processes incrementing 10,000 times each under lock() count exactly 40,000', async () => {
  const key = uniqueKey('counter');
  const seg = await SharedMemory.create(key, 4096);
  try {
    const kids = [0, 1, 2, 3].map(() => spawnChild('counter', [key, '10000']));
    const ends = await Promise.all(kids.map((k) => k.exited));
    ends.forEach((e, i) => assert.equal(e.code, 0, `counter ${i}: ${kids[i].stderr()}`));
    assert.is(new Int32Array(seg.buffer.buffer, seg.buffer.byteOffset, 1)[0], 40000);
  } finally {
    seg.detach();
  }
  assert.equal(leftovers(), [], 'the last detach removed the segment');
});

test('a lock holder killed with SIGKILL hands the lock to a waiter within 100 ms, marked recovered', async () => {
  const key = uniqueKey('recover');
  const seg = await SharedMemory.create(key, 64);
  try {
    const holder = spawnChild('hold-lock', [key]);
    await holder.line((l) => l.includes('"locked"'));
    const waiter = spawnChild('wait-lock', [key]);
    await waiter.line((l) => l.includes('"waiting"'));
    await new Promise((r) => setTimeout(r, 50)); // let the waiter settle into its native wait
    const killedAt = wallMs();
    holder.proc.kill('SIGKILL');
    const got = JSON.parse(await waiter.line((l) => l.includes('"locked"'))) as { at: number; recovered: boolean };
    const gap = got.at - killedAt;
    if (process.env.QCOP_TEST_VERBOSE) console.log(`gap ${gap.toFixed(2)} ms`);
    assert.ok(gap < 100, `lock recovered ${gap.toFixed(1)} ms after the kill (bound: 100 ms)`);
    assert.is(got.recovered, true);
    assert.is((await waiter.exited).code, 0);
  } finally {
    seg.detach();
  }
});

test('a lock left by a dead holder is recovered by tryLock() too', async () => {
  const key = uniqueKey('trylock-recover');
  const seg = await SharedMemory.create(key, 64);
  try {
    const holder = spawnChild('hold-lock', [key]);
    await holder.line((l) => l.includes('"locked"'));
    assert.is(seg.tryLock(), null, 'held by a live process');
    holder.proc.kill('SIGKILL');
    await holder.exited;
    assert.equal(seg.tryLock(), { recovered: true, poisoned: false });
    seg.unlock();
    assert.equal(seg.tryLock(), { recovered: false, poisoned: false });
    seg.unlock();
  } finally {
    seg.detach();
  }
});

test('the lock word is only a hint: zeroing it under a live holder lets nobody in', async () => {
  const key = uniqueKey('word');
  const seg = await SharedMemory.create(key, 64);
  try {
    const holder = spawnChild('hold-lock', [key]);
    await holder.line((l) => l.includes('"locked"'));
    const fd = openSync(`/dev/shm${systemName('segment', key)}`, 'r+');
    writeSync(fd, Buffer.alloc(4), 0, 4, 20); // the header's lock word (int32 5), as any writer of the file could
    closeSync(fd);
    assert.is(seg.tryLock(), null, 'the holder still excludes: its byte lock is held by the kernel');
    holder.proc.kill('SIGKILL');
    await holder.exited;
    assert.ok(seg.tryLock(), 'free once the holder died');
    seg.unlock();
  } finally {
    seg.detach();
  }
});

test('lock() is not re-entrant: a second lock() on the same handle waits for unlock()', async () => {
  const key = uniqueKey('reentrant');
  const seg = await SharedMemory.create(key, 64);
  try {
    assert.equal(await seg.lock(), { recovered: false, poisoned: false });
    let second = false;
    const p = seg.lock().then((r) => { second = true; return r; });
    await new Promise((r) => setTimeout(r, 30));
    assert.is(second, false, 'second lock() still waiting');
    assert.is(seg.tryLock(), null);
    seg.unlock();
    assert.equal(await p, { recovered: false, poisoned: false });
    seg.unlock();
  } finally {
    seg.detach();
  }
});

test('lock({ timeoutMs }) rejects ETIMEDOUT while another handle holds it; unlock() without the lock is EINVAL', async () => {
  const key = uniqueKey('timeout');
  const a = await SharedMemory.create(key, 64);
  const b = await SharedMemory.attach(key);
  try {
    await a.lock();
    const err = await b.lock({ timeoutMs: 50 }).catch((e: { code?: string }) => e);
    assert.is((err as { code?: string }).code, 'ETIMEDOUT');
    assert.throws(() => b.unlock(), (e: { code?: string }) => e.code === 'EINVAL');
    a.unlock();
    assert.equal(await b.lock({ timeoutMs: 1000 }), { recovered: false, poisoned: false });
    b.unlock();
  } finally {
    a.detach();
    b.detach();
  }
});

test('detach() releases a held lock and rejects a pending lock() with ECLOSED', async () => {
  const key = uniqueKey('detach-lock');
  const a = await SharedMemory.create(key, 64);
  const b = await SharedMemory.attach(key);
  try {
    await a.lock();
    const pending = b.lock().catch((e: { code?: string }) => e.code);
    await new Promise((r) => setTimeout(r, 20));
    b.detach();
    assert.is(await pending, 'ECLOSED');
    a.detach(); // releases the lock it holds
    const c = await SharedMemory.create(key, 64);
    assert.equal(c.tryLock(), { recovered: false, poisoned: false });
    c.detach();
  } finally {
    if (!a.detached) a.detach();
    if (!b.detached) b.detach();
  }
});

test.run();
