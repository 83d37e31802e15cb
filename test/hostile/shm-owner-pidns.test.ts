// A process in another pid namespace (its pid there: 402) creates a segment or holds a lock (SPEC §8): the host's
// `qcop shm gc` keeps what it uses and the host never takes its lock over, whatever process has pid 402 here;
// once it died, gc reclaims the segment and the lock is recovered.
// @exclusive: runs `qcop shm gc` as root, which reclaims every stale object on the machine.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SharedMemory } from '../../runtime/shm/index.js';
import { Proc, ROOT, cleanup } from '../helpers/procs.js';
import { assertHealthy, scene } from './harness.js';
import { asRoot, key, purgeRun, runEntries, shmCliAs } from './shm-owner-kit.js';

const VICTIM = path.join(ROOT, 'test/hostile/fixtures/shm-owner-victim.mjs');

if (asRoot('shm-owner-pidns.test.ts')) {
  test.after.each(() => {
    cleanup();
    purgeRun();
  });

  /**
   * The victim fixture in a new pid and mount namespace (its own /proc), forked as pid 402 there.
   * Its namespace dies with it: `crash` makes it SIGKILL itself, then sh and unshare exit.
   */
  async function inNamespace(step: string): Promise<{ proc: Proc; pid: number; report: any }> {
    const proc = new Proc('unshare', ['--fork', '--pid', '--mount-proc', '--kill-child=SIGKILL', 'sh', '-c',
      'echo 401 > /proc/sys/kernel/ns_last_pid && "$0" "$@"; :', process.execPath, VICTIM, step]);
    const done = await proc.waitJson((v) => v.done === true, 15000, 'the process in its pid namespace');
    const report = proc.json().find((v) => v.step);
    assert.ok(report?.ok, JSON.stringify(report));
    return { proc, pid: done.pid, report };
  }
  async function crash(p: Proc): Promise<void> {
    p.child.stdin!.write('crash\n');
    await p.exited; // unshare exits after the namespace's last process is gone
  }

  test('a live segment created in another pid namespace survives `qcop shm gc`; gc reclaims it once its creator died', async () => {
    const k = key('ns-segment');
    const { proc, pid } = await inNamespace(`create:${k}`);
    assert.is(pid, 402, 'the creator is pid 402 in its namespace');
    const row = ((await shmCliAs(0, 0, 'ls')) as Array<{ key: string; stale: boolean; pids: number[] }>).find((r) => r.key === k);
    assert.equal(row && [row.stale, row.pids], [false, []], 'alive, and pid 402 is not reported as a pid of this namespace');
    assert.ok(!((await shmCliAs(0, 0, 'gc')).removed as string[]).includes(k), 'gc kept it');
    const seg = await SharedMemory.attach(k); // still there, and usable
    seg.detach(); // not the last: the creator is attached
    await crash(proc);
    await shmCliAs(0, 0, 'gc');
    assert.equal(runEntries(), [], 'stale once its creator died, and removed');
  });

  test('a lock held in another pid namespace is never taken over while its holder lives; recovered after it died', async () => {
    const k = key('ns-lock');
    const seg = await SharedMemory.create(k, 64);
    try {
      const { proc, pid } = await inNamespace(`lock:${k}`);
      assert.is(pid, 402);
      assert.is(seg.tryLock(), null, 'held');
      const waited = await seg.lock({ timeoutMs: 200 }).then(() => 'locked', (e: { code?: string }) => e.code);
      assert.is(waited, 'ETIMEDOUT', 'a waiter keeps waiting: the holder is alive');
      await crash(proc);
      assert.equal(await seg.lock({ timeoutMs: 5000 }), { recovered: true, poisoned: false });
      seg.unlock();
    } finally {
      seg.detach();
    }
  });

  test('the broker and its clients are unaffected', async () => {
    await assertHealthy(await scene());
  });
}

test.run();
