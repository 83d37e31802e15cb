// Another user (nobody) plants /dev/shm objects under root's shm names (SPEC §8): forged headers, its own semaphore,
// a registry naming root's live semaphore, links, FIFOs. Root never reads them, never uses or removes a semaphore
// through them, removes the squatters, and the broker is unaffected.
// @exclusive: runs `qcop shm gc` as root, which reclaims every stale object on the machine.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../runtime/native/index.js';
import { SharedMemory, SystemSemaphore, listSegments, systemName } from '../../runtime/shm/index.js';
import { cleanup, runCli } from '../helpers/procs.js';
import { assertHealthy, scene } from './harness.js';
import { NOBODY, asRoot, attack, key, purgeRun, runEntries } from './shm-owner-kit.js';

const codeOf = (p: Promise<unknown>): Promise<{ code?: string; message?: string } | 'resolved'> =>
  p.then(() => 'resolved' as const, (e) => e as { code?: string; message?: string });
const entry = (kind: 'segment' | 'semaphore', k: string): string => systemName(kind, k).slice(1);
/** Root's semaphore id, from its own registry file (what an attacker reads in /proc/sysvipc/sem). */
const semidOf = (k: string): number => readFileSync(`/dev/shm/${entry('semaphore', k)}`).readInt32LE(44);
/** `qcop shm CMD` as root, through the CLI as a user runs it. */
async function shm(cmd: 'ls' | 'gc'): Promise<any> {
  const r = await runCli(['shm', cmd]);
  assert.is(r.code, 0, `qcop shm ${cmd}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

if (asRoot('shm-owner.test.ts')) {
  test.after.each(() => {
    cleanup();
    purgeRun();
  });

  test("a forged segment under root's name: attach is EACCES naming uid 65534, nothing read; create replaces it", async () => {
    const k = key('segment');
    await attack('segment', entry('segment', k), k, 'hold'); // holds a presence lock: looks attached
    const err = await codeOf(SharedMemory.attach(k));
    assert.is(err !== 'resolved' && err.code, 'EACCES');
    assert.match((err as Error).message, `owned by uid ${NOBODY}, not uid 0`);
    const row = listSegments().find((r) => r.name === entry('segment', k));
    assert.equal(row && [row.squatted, row.uid, row.size, row.pids, row.key], [true, NOBODY, 0, [], k], 'listed from its name only');
    const seg = await SharedMemory.create(k, 4096);
    try {
      assert.ok(seg.buffer.every((b) => b === 0), "fresh zeroed memory, not the attacker's 'A's");
      const st = statSync(`/dev/shm/${entry('segment', k)}`);
      assert.equal([st.uid, st.mode & 0o777], [0, 0o600]);
    } finally {
      seg.detach();
    }
  });

  test("a forged registry under root's semaphore name naming the attacker's semaphore: open makes root's own", async () => {
    const k = key('semaphore');
    const { semid } = await attack('semaphore', entry('semaphore', k), k, '5', 'hold');
    const sem = await SystemSemaphore.open(k, { initial: 1 });
    try {
      assert.is(sem.value, 1, "root's own semaphore with its own initial value");
      assert.ok(sem.tryAcquire());
      assert.is(native().semStat(semid!).value, 5, "the attacker's semaphore was never touched");
      const st = statSync(`/dev/shm/${entry('semaphore', k)}`);
      assert.equal([st.uid, st.mode & 0o777], [0, 0o600]);
      sem.release();
    } finally {
      sem.close();
    }
  });

  test("stale-looking registries naming root's live semaphore: `qcop shm gc` removes them, never the semaphore", async () => {
    const live = key('live');
    const sem = await SystemSemaphore.open(live, { initial: 2 });
    try {
      const semid = semidOf(live);
      const own = key('forged-own'); // under nobody's own name (mode 0600: passes the writable check, fails uid/cuid)
      const squat = key('forged-squat'); // under root's name
      await attack('registry', systemName('semaphore', own, NOBODY).slice(1), own, String(semid));
      await attack('registry', entry('semaphore', squat), squat, String(semid));
      const rows = (await shm('ls')) as Array<Record<string, unknown>>;
      for (const r of rows) assert.ok(['key', 'kind', 'size', 'uid', 'pids', 'stale'].every((f) => f in r), 'ls rows keep their fields');
      const removed = (await shm('gc')).removed as string[];
      assert.ok(!removed.includes(live), 'the live semaphore is kept');
      assert.equal(runEntries(), [entry('semaphore', live)], 'both forgeries are gone'); // (a broker's start-up sweep may be first)
      assert.is(native().semStat(semid).value, 2, "root's semaphore is alive and untouched");
      assert.ok(sem.tryAcquire());
      sem.release();
    } finally {
      sem.close();
    }
  });

  test("a symbolic link under root's name is never followed: attach EACCES, create leaves the target intact", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qcop-owner-'));
    try {
      const target = join(dir, 'secret');
      writeFileSync(target, 'SECRET', { mode: 0o600 });
      const k = key('link');
      await attack('symlink', entry('segment', k), target);
      const err = await codeOf(SharedMemory.attach(k));
      assert.is(err !== 'resolved' && err.code, 'EACCES');
      assert.match((err as Error).message, 'symbolic link');
      const seg = await SharedMemory.create(k, 4096);
      seg.detach();
      assert.is(readFileSync(target, 'utf8'), 'SECRET', 'the target was neither truncated nor written');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a FIFO under root\'s name: `qcop shm ls` and `gc` do not hang on it, gc removes it', async () => {
    const k = key('fifo');
    await attack('fifo', entry('segment', k));
    const row = ((await shm('ls')) as Array<{ name: string; squatted?: boolean; stale: boolean }>).find((r) => r.name === entry('segment', k));
    assert.equal(row && [row.squatted, row.stale], [true, true]);
    await shm('gc');
    assert.equal(runEntries(), [], 'removed');
  });

  test('a broker started over planted objects is healthy, and its start-up sweep spared the live semaphore', async () => {
    const live = key('live');
    const sem = await SystemSemaphore.open(live, { initial: 3 });
    try {
      const forged = key('forged');
      await attack('registry', entry('semaphore', forged), forged, String(semidOf(live)));
      await attack('fifo', entry('segment', key('fifo')));
      await assertHealthy(await scene());
      assert.is(native().semStat(semidOf(live)).value, 3);
      assert.equal(runEntries(), [entry('semaphore', live)], 'the sweep removed the forgeries only');
    } finally {
      sem.close();
    }
  });
}

test.run();
