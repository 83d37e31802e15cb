// Another user (nobody) squats the shm names of an ordinary user (SPEC §8, §9): the user gets EACCES naming the
// squatter and never reads its bytes; root's `qcop shm gc` removes the squatters; nobody can remove the user's live
// objects, and root's gc removes them only once their process is dead.
// @exclusive: runs `qcop shm gc` as root, which reclaims every stale object on the machine.
import { statSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { systemName } from '../../runtime/shm/index.js';
import { Proc, cleanup } from '../helpers/procs.js';
import { assertHealthy, scene } from './harness.js';
import { NOBODY, asRoot, attack, key, purgeRun, runAs, runEntries, shmCliAs } from './shm-owner-kit.js';
import { addUser, removeUsers } from './users.js';

if (asRoot('shm-owner-user.test.ts')) {
  let user = { uid: -1, gid: -1 };
  test.before(() => { user = addUser('vic'); }); // removed on exit too, when a test throws past the hooks
  test.after.each(() => {
    cleanup();
    purgeRun();
  });
  test.after(() => removeUsers());

  /** Runs the victim fixture as the user; resolves with it once every step reported. */
  async function victim(...steps: string[]): Promise<{ proc: Proc; steps: any[] }> {
    const proc = runAs(user.uid, user.gid, 'shm-owner-victim.mjs', steps);
    await proc.waitJson((v) => v.done === true, 15000, 'the victim');
    return { proc, steps: proc.json().filter((v) => v.step) };
  }
  const name = (kind: 'segment' | 'semaphore', k: string): string => systemName(kind, k, user.uid).slice(1);

  test("nobody squats a user's names: create, attach and open are EACCES naming uid 65534; after root's gc they work", async () => {
    let seg = '';
    let sem = '';
    let before: { proc: Proc; steps: any[] } | undefined;
    // A root process elsewhere (another test's broker, sweeping at start) may remove the squatters before the
    // victim runs; a non-root victim can never remove them itself, so a success means exactly that: plant again.
    for (let attempt = 0; attempt < 5; attempt++) {
      seg = key('segment');
      sem = key('semaphore');
      await attack('segment', name('segment', seg), seg, 'hold');
      await attack('semaphore', name('semaphore', sem), sem, '5', 'hold');
      before = await victim(`create:${seg}`, `attach:${seg}`, `open:${sem}`);
      if (before.steps.every((r) => !r.ok)) break;
      before.proc.child.stdin!.write('exit\n');
      await before.proc.exited;
      purgeRun();
    }
    for (const r of before!.steps) {
      assert.equal([r.step, r.ok, r.code], [r.step, false, 'EACCES'], JSON.stringify(r));
      assert.match(r.message, `owned by uid ${NOBODY}, not uid ${user.uid}`);
      assert.is(r.first, undefined, "nothing of the squatter's was read");
    }
    before!.proc.child.stdin!.write('exit\n');
    await before!.proc.exited;
    await shmCliAs(0, 0, 'gc');
    assert.equal(runEntries(), [], 'root removed the squatters'); // (a broker's start-up sweep may be first)
    const after = await victim(`create:${seg}`, `open:${sem}`);
    assert.equal(after.steps.map((r) => [r.step, r.ok, r.first ?? r.value]), [['create', true, 0], ['open', true, 1]]);
    for (const kind of ['segment', 'semaphore'] as const) {
      const st = statSync(`/dev/shm/${name(kind, kind === 'segment' ? seg : sem)}`);
      assert.equal([st.uid, st.mode & 0o777], [user.uid, 0o600]);
    }
    after.proc.child.stdin!.write('exit\n');
    assert.is((await after.proc.exited).code, 0);
    assert.equal(runEntries(), [], 'the last detach and close removed them');
  });

  test("nobody's gc cannot remove a user's live objects, root's keeps them, and removes them once their process died", async () => {
    const seg = key('live-segment');
    const sem = key('live-semaphore');
    const v = await victim(`create:${seg}`, `open:${sem}`);
    assert.ok(v.steps.every((r) => r.ok), JSON.stringify(v.steps));
    assert.equal((await shmCliAs(NOBODY, NOBODY, 'gc')).removed, []);
    const mine = ((await shmCliAs(0, 0, 'ls')) as Array<{ key: string; pids: number[]; stale: boolean; uid: number }>)
      .filter((r) => r.key === seg || r.key === sem);
    assert.equal(mine.map((r) => [r.uid, r.stale, r.pids.length]), [[user.uid, false, 1], [user.uid, false, 1]]);
    const kept = (await shmCliAs(0, 0, 'gc')).removed as string[];
    assert.ok(!kept.includes(seg) && !kept.includes(sem), 'live objects are kept');
    v.proc.child.stdin!.write('crash\n');
    await v.proc.exited;
    await shmCliAs(0, 0, 'gc');
    assert.equal(runEntries(), [], 'stale after the crash, and removed');
  });

  test('the broker and its clients are unaffected', async () => {
    await assertHealthy(await scene());
  });
}

test.run();
