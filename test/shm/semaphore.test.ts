// Behaviour of SystemSemaphore: timeouts, tryAcquire, units given back by dead holders, signals that survive.
import { chmodSync, statSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SystemSemaphore, systemName } from '../../runtime/shm/index.js';
import { killChildren, leftovers, purge, spawnChild, uniqueKey } from './helpers.js';

test.after.each(async () => {
  await killChildren();
  purge();
});

const codeOf = (e: unknown): string | undefined => (e as { code?: string }).code;

test('tryAcquire takes a free unit, refuses when none is left, and acquire({ timeoutMs }) rejects ETIMEDOUT', async () => {
  const sem = await SystemSemaphore.open(uniqueKey('try'), { initial: 1 });
  try {
    assert.is(sem.tryAcquire(), true);
    assert.is(sem.tryAcquire(), false);
    const err = await sem.acquire({ timeoutMs: 50 }).catch((e) => e);
    assert.is(codeOf(err), 'ETIMEDOUT');
    sem.release();
    await sem.acquire({ timeoutMs: 1000 });
    assert.is(sem.value, 0);
    sem.release();
    assert.is(sem.value, 1);
  } finally {
    sem.close();
  }
});

test('a waiting acquire() resolves when another handle releases, without blocking the event loop', async () => {
  const key = uniqueKey('wait');
  const a = await SystemSemaphore.open(key, { initial: 0 });
  const b = await SystemSemaphore.open(key);
  try {
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 5);
    const p = a.acquire({ timeoutMs: 5000 });
    setTimeout(() => b.release(), 60);
    await p;
    clearInterval(timer);
    assert.ok(ticks >= 3, `event loop kept running while waiting (${ticks} ticks)`);
  } finally {
    a.close();
    b.close();
  }
});

test('initial applies only when open() creates the semaphore; the last close() removes it', async () => {
  const key = uniqueKey('initial');
  const a = await SystemSemaphore.open(key, { initial: 2 });
  const b = await SystemSemaphore.open(key, { initial: 7 });
  assert.is(b.value, 2);
  a.close();
  assert.ok(leftovers().length === 1, 'still open by b');
  b.close();
  assert.equal(leftovers(), []);
  assert.throws(() => b.close(), (e: unknown) => codeOf(e) === 'ECLOSED');
  assert.throws(() => b.tryAcquire(), (e: unknown) => codeOf(e) === 'ECLOSED');
  assert.is(codeOf(await b.acquire().catch((e) => e)), 'ECLOSED');
  const c = await SystemSemaphore.open(key, { initial: 3 });
  assert.is(c.value, 3, 're-created with its own initial value');
  c.close();
});

test('close() rejects a pending acquire() with ECLOSED', async () => {
  const key = uniqueKey('close-pending');
  const keep = await SystemSemaphore.open(key, { initial: 0 });
  const sem = await SystemSemaphore.open(key);
  try {
    const p = sem.acquire().catch((e) => codeOf(e));
    await new Promise((r) => setTimeout(r, 20));
    sem.close();
    assert.is(await p, 'ECLOSED');
    assert.is(keep.value, 0);
  } finally {
    keep.close();
  }
});

test('units held by a process killed with SIGKILL come back, and a waiter gets one', async () => {
  const key = uniqueKey('undo');
  const sem = await SystemSemaphore.open(key, { initial: 2 });
  try {
    const child = spawnChild('sem-hold', [key, '2']);
    await child.line((l) => l.includes('"held"'));
    assert.is(sem.value, 0);
    assert.is(sem.tryAcquire(), false);
    const waiting = sem.acquire({ timeoutMs: 5000 });
    child.proc.kill('SIGKILL');
    await waiting;
    await child.exited;
    assert.is(sem.value, 1, 'both units came back; the waiter took one');
    sem.release();
  } finally {
    sem.close();
  }
});

test('a release() by a process that never acquired stays released after it exits', async () => {
  const key = uniqueKey('signal');
  const sem = await SystemSemaphore.open(key, { initial: 0 });
  try {
    const child = spawnChild('sem-signal', [key, '2']);
    const end = await child.exited;
    assert.is(end.code, 0, child.stderr());
    assert.is(sem.value, 2);
    assert.is(sem.tryAcquire(), true);
    assert.is(sem.tryAcquire(), true);
  } finally {
    sem.close();
  }
});

test('a registry is never writable by others (0640 with a group), and one that is gets EACCES: its id is not trusted', async () => {
  const key = uniqueKey('registry-mode');
  const sem = await SystemSemaphore.open(key, { initial: 1, group: process.getgid!() });
  const file = `/dev/shm${systemName('semaphore', key)}`;
  try {
    assert.is(statSync(file).mode & 0o777, 0o640);
    chmodSync(file, 0o660);
    const err = await SystemSemaphore.open(key).catch((e) => e);
    assert.is(codeOf(err), 'EACCES');
    assert.match(err.message, 'writable by other users');
    assert.is(sem.value, 1, 'the semaphore itself is untouched');
  } finally {
    sem.close();
  }
  assert.equal(leftovers(), []);
});

test('bad arguments are EINVAL', async () => {
  assert.is(codeOf(await SystemSemaphore.open('', {}).catch((e) => e)), 'EINVAL');
  assert.is(codeOf(await SystemSemaphore.open(uniqueKey('x'), { initial: -1 }).catch((e) => e)), 'EINVAL');
  const sem = await SystemSemaphore.open(uniqueKey('args'));
  try {
    assert.throws(() => sem.release(0), (e: unknown) => codeOf(e) === 'EINVAL');
    assert.is(codeOf(await sem.acquire({ timeoutMs: -5 }).catch((e) => e)), 'EINVAL');
  } finally {
    sem.close();
  }
});

test.run();
