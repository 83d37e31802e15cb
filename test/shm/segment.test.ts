// Behaviour of SharedMemory segments: sharing, permissions, bad input, detach, read-only mappings, takeover.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../runtime/native/index.js';
import { SharedMemory, listSegments, systemName } from '../../runtime/shm/index.js';
import { RUN, killChildren, leftovers, purge, spawnChild, uniqueKey } from './helpers.js';

test.after.each(async () => {
  await killChildren();
  purge();
});

const codeOf = (e: unknown): string | undefined => (e as { code?: string }).code;
const rejectsWith = async (p: Promise<unknown>): Promise<string | undefined> => {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return codeOf(e);
  }
};

test('two handles share the same bytes, zero copy; the segment is mode 0600 and the last detach removes it', async () => {
  const key = uniqueKey('share');
  const a = await SharedMemory.create(key, 10000);
  const b = await SharedMemory.attach(key);
  try {
    assert.is(a.size, 10000);
    assert.is(b.size, 10000);
    assert.is(a.key, key);
    a.buffer.write('hello', 100);
    assert.is(b.buffer.toString('utf8', 100, 105), 'hello');
    assert.is(statSync(`/dev/shm${systemName('segment', key)}`).mode & 0o777, 0o600);
    assert.equal([a.poisoned, b.poisoned], [false, false]);
    a.detach();
    assert.is(leftovers().length, 1, 'b still attached');
    assert.is(b.buffer.toString('utf8', 100, 105), 'hello');
  } finally {
    if (!a.detached) a.detach();
    b.detach();
  }
  assert.equal(leftovers(), []);
  assert.is(await rejectsWith(SharedMemory.attach(key)), 'ENOENT');
});

const longKey = `${RUN}/${'é'.repeat(100)}`; // valid (≤ 255 bytes) but too long to escape into a name

const badInput: Array<[string, () => Promise<unknown>, string]> = [
  ['attach of a missing key', () => SharedMemory.attach(uniqueKey('missing')), 'ENOENT'],
  ['size 0', () => SharedMemory.create(uniqueKey('zero'), 0), 'EINVAL'],
  ['negative size', () => SharedMemory.create(uniqueKey('neg'), -1), 'EINVAL'],
  ['fractional size', () => SharedMemory.create(uniqueKey('frac'), 1.5), 'EINVAL'],
  ['size over the default maximum (1 GiB)', () => SharedMemory.create(uniqueKey('huge'), 2 ** 30 + 1), 'EMSGSIZE'],
  ['size over a configured maximum', () => SharedMemory.create(uniqueKey('max'), 4097, { maxSize: 4096 }), 'EMSGSIZE'],
  ['empty key', () => SharedMemory.create('', 64), 'EINVAL'],
  ['over-long key (256 bytes)', () => SharedMemory.create('k'.repeat(256), 64), 'EINVAL'],
  ['key with NUL', () => SharedMemory.create(`${RUN}/a\u0000b`, 64), 'EINVAL'],
  ['key with a control character', () => SharedMemory.create(`${RUN}/a\nb`, 64), 'EINVAL'],
  ['key with a .. segment', () => SharedMemory.create(`${RUN}/../etc`, 64), 'EINVAL'],
  ['key that is ..', () => SharedMemory.attach('..'), 'EINVAL'],
  ['key with an empty segment', () => SharedMemory.create(`${RUN}//x`, 64), 'EINVAL'],
  ['key with a trailing /', () => SharedMemory.create(`${RUN}/`, 64), 'EINVAL'],
  ['key that is not a string', () => SharedMemory.create(42 as unknown as string, 64), 'EINVAL'],
];

for (const [what, run, code] of badInput) {
  test(`bad input: ${what} → ${code}`, async () => {
    assert.is(await rejectsWith(run()), code);
    assert.equal(leftovers(), [], 'nothing was created');
  });
}

test('create on a key in use is EEXIST; a long key maps to a hashed name and lists under its own key', async () => {
  const a = await SharedMemory.create(longKey, 64);
  try {
    assert.is(await rejectsWith(SharedMemory.create(longKey, 64)), 'EEXIST');
    const row = listSegments().find((r) => r.key === longKey);
    assert.ok(row, 'listed under the original key');
    assert.equal(row!.pids, [process.pid]);
    const b = await SharedMemory.attach(longKey);
    assert.is(b.size, 64);
    b.detach();
  } finally {
    a.detach();
  }
  assert.ok(!listSegments().some((r) => r.key === longKey), 'removed by the last detach');
});

test('attach refuses a header whose size does not fit its file (EINVAL), before mapping anything', async () => {
  const key = uniqueKey('bad-size');
  const seg = await SharedMemory.create(key, 4096);
  try {
    const fd = openSync(`/dev/shm${systemName('segment', key)}`, 'r+');
    const size = Buffer.alloc(4);
    size.writeInt32LE(1 << 20);
    writeSync(fd, size, 0, 4, 32); // the header's size (int32 8), as any writer of the file could
    closeSync(fd);
    assert.is(await rejectsWith(SharedMemory.attach(key)), 'EINVAL');
  } finally {
    seg.detach();
  }
  assert.equal(leftovers(), []);
});

test('after detach() the buffer is empty and every further call fails ECLOSED', async () => {
  const seg = await SharedMemory.create(uniqueKey('closed'), 64);
  const old = seg.buffer;
  seg.detach();
  assert.is(seg.buffer.length, 0);
  assert.is(seg.size, 0);
  assert.is(old.length, 0, 'views taken before detach are emptied too');
  assert.throws(() => seg.detach(), (e: unknown) => codeOf(e) === 'ECLOSED');
  assert.throws(() => seg.tryLock(), (e: unknown) => codeOf(e) === 'ECLOSED');
  assert.throws(() => seg.unlock(), (e: unknown) => codeOf(e) === 'ECLOSED');
  assert.is(await rejectsWith(seg.lock()), 'ECLOSED');
});

test('a write through a readOnly attachment kills the writing process with SIGSEGV/SIGBUS', async () => {
  const key = uniqueKey('ro');
  const seg = await SharedMemory.create(key, 4096);
  try {
    seg.buffer[0] = 7;
    const child = spawnChild('write-readonly', [key]);
    const line = JSON.parse(await child.line((l) => l.includes('"attached"'))) as { first: number };
    assert.is(line.first, 7, 'reads work');
    const end = await child.exited;
    assert.ok(end.signal === 'SIGSEGV' || end.signal === 'SIGBUS', `child ended with ${end.signal ?? end.code}`);
    assert.is(seg.buffer[0], 7);
  } finally {
    seg.detach();
  }
});

test('shrunk under its readers by another process: they read zeros, see poisoned, and live', async () => {
  const key = uniqueKey('shrunk');
  const size = 256 << 10;
  const a = await SharedMemory.create(key, size);
  const b = await SharedMemory.attach(key, { readOnly: true });
  try {
    a.buffer.fill(0x5a);
    assert.is(b.buffer[size - 1], 0x5a);
    const faults = native().guardFaults();
    // Another process of the same user cuts the file to its header and one page, as any writer of the segment could.
    const file = `/dev/shm${systemName('segment', key)}`;
    const keep = Math.max(4096, native().pageSize) + 4096;
    const r = spawnSync(process.execPath, ['-e', `require('fs').truncateSync(${JSON.stringify(file)}, ${keep})`]);
    assert.is(r.status, 0, String(r.stderr));
    assert.ok(b.poisoned, 'seen from the file size before any access');
    assert.is(b.buffer[size - 1], 0, 'a lost page reads zero: no SIGBUS');
    let sum = 0;
    for (let i = 0; i < size; i += 4096) sum += b.buffer[i]!;
    assert.is(sum, 0, 'from then on the whole mapping is zeros, never a mix of data and holes');
    assert.is(native().guardFaults(), faults + 1, 'the fault guard took the access');
    a.buffer[0] = 1; // a write to the lost pages reaches nobody, and kills nobody
    assert.is(b.buffer[0], 0);
    const locked = await a.lock({ timeoutMs: 1000 });
    assert.equal(locked, { recovered: false, poisoned: true });
    a.unlock();
    assert.is(await rejectsWith(SharedMemory.attach(key)), 'EINVAL', 'a new attach refuses the short file');
  } finally {
    a.detach();
    b.detach();
  }
  assert.ok(a.poisoned, 'still true after detach');
  assert.equal(leftovers(), []);
});

test('create on a key whose creator was killed takes the stale segment over', async () => {
  const key = uniqueKey('takeover');
  const child = spawnChild('create-and-hang', [key, '128']);
  await child.line((l) => l.includes('"created"'));
  assert.is(await rejectsWith(SharedMemory.create(key, 64)), 'EEXIST');
  child.proc.kill('SIGKILL');
  await child.exited;
  const seg = await SharedMemory.create(key, 64);
  try {
    assert.is(seg.size, 64, 'a fresh segment of the new size');
  } finally {
    seg.detach();
  }
});

test.run();
