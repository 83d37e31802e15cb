// Behaviour of listSegments / collectGarbage (qcop shm ls|gc): segments left by killed processes are found and removed.
// @exclusive: brokers started by other test files reclaim stale segments, which this file creates on purpose.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SharedMemory, SystemSemaphore, collectGarbage, listSegments } from '../../runtime/shm/index.js';
import { killChildren, leftovers, purge, spawnChild, uniqueKey } from './helpers.js';

test.after.each(async () => {
  await killChildren();
  purge();
});

test('a segment left by a SIGKILLed creator is listed as stale and removed by collectGarbage', async () => {
  const key = uniqueKey('orphan');
  const child = spawnChild('create-and-hang', [key, '5000']);
  await child.line((l) => l.includes('"created"'));
  const live = listSegments().find((r) => r.key === key);
  assert.ok(live, 'listed while its creator lives');
  assert.equal({ ...live, name: undefined }, {
    key, kind: 'segment', size: 5000, uid: process.getuid!(), pids: [child.proc.pid!], stale: false, name: undefined,
  });
  assert.ok(!collectGarbage().removed.includes(key), 'a live segment is kept');
  child.proc.kill('SIGKILL');
  await child.exited;
  const dead = listSegments().find((r) => r.key === key);
  assert.equal([dead?.stale, dead?.pids], [true, []]);
  assert.ok(collectGarbage().removed.includes(key));
  assert.ok(!listSegments().some((r) => r.key === key));
  assert.equal(leftovers(), []);
});

test('segments and semaphores in use are listed with their attachers and survive gc', async () => {
  const key = uniqueKey('inuse');
  const seg = await SharedMemory.create(key, 100);
  const sem = await SystemSemaphore.open(key, { initial: 3 });
  try {
    const rows = listSegments().filter((r) => r.key === key);
    assert.equal(rows.map((r) => [r.kind, r.size, r.pids, r.stale]).sort(), [
      ['segment', 100, [process.pid], false], ['semaphore', 0, [process.pid], false],
    ]);
    assert.is(rows.find((r) => r.kind === 'semaphore')?.value, 3);
    assert.ok(!collectGarbage().removed.includes(key));
    assert.is(leftovers().length, 2);
  } finally {
    seg.detach();
    sem.close();
  }
});

test('a semaphore whose only opener was killed is stale and gc removes it', async () => {
  const key = uniqueKey('sem-orphan');
  const child = spawnChild('sem-signal', [key, '1']); // opens (creating it) and exits without close()
  assert.is((await child.exited).code, 0, child.stderr());
  const row = listSegments().find((r) => r.key === key && r.kind === 'semaphore');
  assert.equal([row?.stale, row?.value], [true, 1]);
  assert.ok(collectGarbage().removed.includes(key));
  assert.equal(leftovers(), []);
});

test.run();
