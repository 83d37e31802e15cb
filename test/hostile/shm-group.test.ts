// A broker with --group (SPEC §3, §8): another member of the group may read a producer's pool segment (it may
// receive) but can neither write into the messages in flight nor shrink, re-mode or remove the segment;
// a user outside the group cannot even read it; the producer's departure leaves the broker healthy.
// And the systemd case: a broker that is neither root nor the producer attaches pools read-only.
// Real second users (useradd, setpriv, docs/PLATFORM-NOTES.md), removed again even when the test fails.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, Proc, QCOPD, ROOT, runCli, socketAnswers, tempDir, waitFor } from '../helpers/procs.js';
import { assertHealthy, scene } from './harness.js';
import { addGroup, addUser, asUser, removeUsers, requireRoot, runAs, sceneAround, type User } from './users.js';

const PEEK = path.join(ROOT, 'test/hostile/fixtures/shm-peek.mjs');
const SENDER = path.join(ROOT, 'test/shm/fixtures/shm-sender.mjs');
const RECEIVER = path.join(ROOT, 'test/shm/fixtures/shm-receiver.mjs');
const QCOP = path.join(ROOT, 'bin/qcop.js');
const KiB = 1 << 10;

/** What `user` (with `groups`) may do to `file`: shm-peek's verdicts. */
async function peek(user: User, file: string, groups: number[] = []): Promise<Record<string, string>> {
  const r = await runAs(user, process.execPath, [PEEK, file], {}, groups);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test.before(() => requireRoot('test/hostile/shm-group.test.ts'));
test.after(removeUsers);
test.after.each(() => cleanup());

test('--group: a group member reads a pool segment but cannot write, shrink, re-mode or remove it; outsiders cannot read', async () => {
  const group = addGroup('grp');
  const member = addUser('mem', group.name);
  const outsider = addUser('out');
  const s = await scene(['--group', group.name]);
  const gid = group.gid;
  // User A (this test's user) produces large messages through its pool and stays connected.
  const a = new Proc(process.execPath, [SENDER, s.broker.socket, 'grp/ch', `${300 * KiB}`, '3', '--stay']);
  await a.waitJson((v) => v.ev === 'flushed', 10000, 'A\'s sends');
  const name = fs.readdirSync('/dev/shm').find((e) => e.includes(`qcop-pool.${a.pid}-`));
  assert.ok(name, 'A has a pool segment');
  const file = `/dev/shm/${name}`;
  const st = fs.statSync(file);
  assert.equal([st.mode & 0o777, st.gid], [0o640, gid], 'mode 0640, the broker\'s group');

  assert.equal(await peek(member, file, [gid]), { write: 'EACCES', truncate: 'EACCES', chmod: 'EPERM', unlink: 'EPERM', read: 'ok' });
  assert.equal(await peek(outsider, file), { write: 'EACCES', truncate: 'EACCES', chmod: 'EPERM', unlink: 'EPERM', read: 'EACCES' });
  assert.is(fs.statSync(file).size, st.size, 'the segment is whole');

  // As a receiver, the member maps A's pool read-only and gets A's large message through it.
  const rx = asUser(member, process.execPath, [QCOP, 'listen', 'grp/big', '--count', '1', '--socket', s.broker.socket], {}, [gid]);
  await waitFor(async () => (await runCli(['registered', 'grp/big', '--socket', s.broker.socket])).code === 0, 10000, `the member's listener (${rx.stderr})`);
  const a2 = new Proc(process.execPath, [SENDER, s.broker.socket, 'grp/big', `${300 * KiB}`, '1']);
  assert.is((await a2.exited).code, 0, a2.stderr);
  assert.is((await rx.exited).code, 0, rx.stderr);
  assert.is(Buffer.from(rx.json()[0].data.$bytes, 'base64').length, 300 * KiB);
  assert.ok(!/lost/.test(rx.stderr), rx.stderr);

  // A leaves; the broker lets go of A's pool without harm.
  a.kill('SIGTERM');
  await a.exited;
  await waitFor(async () => {
    const r = await runCli(['stats', '--socket', s.broker.socket]);
    return r.code === 0 && JSON.parse(r.stdout).shm.segments === 0;
  }, 10000, 'the broker let go of A\'s pool');
  await assertHealthy(s);
});

/** The descriptors `pid` holds on `/dev/shm/<name>`: open flags and the fdinfo lines of their locks. */
function heldBy(pid: number, name: string): Array<{ flags: number; locks: string[] }> {
  const out: Array<{ flags: number; locks: string[] }> = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== `/dev/shm/${name}`) continue;
      const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      out.push({ flags: parseInt(/^flags:\s+(\d+)/m.exec(info)![1]!, 8), locks: info.split('\n').filter((l) => l.startsWith('lock:')) });
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const poolFiles = (uid: number): string[] => fs.readdirSync('/dev/shm').filter((e) => e.startsWith(`qcop.${uid}.m.qcop-pool.`));

test('broker as a third user of the group (neither root nor the producer): pools attached read-only, 300 KiB delivered through one', async () => {
  const group = addGroup('svc');
  const broker = addUser('brk', group.name);
  const producer = addUser('prd', group.name);
  const receiver = addUser('rcv', group.name);
  const gid = group.gid;
  const dir = tempDir();
  fs.chownSync(dir, broker.uid, broker.gid);
  fs.chmodSync(dir, 0o755);
  const socket = path.join(dir, 'run', 'qcop.sock');
  const b = asUser(broker, process.execPath, [QCOPD, '--log-level', 'error', '--socket', socket, '--group', group.name], {}, [gid]);
  await waitFor(async () => {
    if (b.child.exitCode !== null) throw new Error(`broker exited: ${b.stderr}`);
    return socketAnswers(socket);
  }, 10000, 'the broker of user brk');
  const rx = asUser(receiver, process.execPath, [RECEIVER, socket, 'svc/big'], {}, [gid]);
  await rx.waitJson((v) => v.ev === 'ready', 10000, 'the receiver of user rcv');

  const tx = asUser(producer, process.execPath, [SENDER, socket, 'svc/big', `${300 * KiB}`, '1', '--stay'], {}, [gid]);
  await tx.waitJson((v) => v.ev === 'flushed', 10000, `the producer's send (${tx.stderr})`);
  const got = await rx.waitJson((v) => v.ev === 'msg', 10000, 'the message');
  assert.equal([got.len, got.shared, got.sha], [300 * KiB, true, sha(Buffer.alloc(300 * KiB, 0))], 'through the pool, intact');
  const [name, ...more] = poolFiles(producer.uid);
  assert.ok(name && more.length === 0, 'one pool segment');
  const st = fs.statSync(`/dev/shm/${name}`);
  assert.equal([st.uid, st.gid, st.mode & 0o777], [producer.uid, gid, 0o640]);
  // The broker's descriptor is read-only, and its read lock on PRESENCE (byte 0) keeps the segment alive.
  const held = heldBy(b.pid!, name!);
  assert.is(held.length, 1, 'the broker holds the segment once');
  assert.is(held[0]!.flags & 3, 0, 'O_RDONLY');
  assert.ok(held[0]!.locks.some((l) => /OFDLCK\s+ADVISORY\s+READ\s.*\s0\s+0$/.test(l)), held[0]!.locks.join('; '));
  const stats = JSON.parse((await runCli(['stats', '--socket', socket])).stdout).shm;
  assert.equal([stats.messages, stats.inlined, stats.segments], [1, 0, 1]);

  // Stopped by a signal (as a service is): the broker lets go but cannot remove another user's file; the
  // producer's user's next pool removes it (docs/SHM.md §8).
  tx.kill('SIGTERM');
  await tx.exited;
  await waitFor(async () => JSON.parse((await runCli(['stats', '--socket', socket])).stdout).shm.segments === 0, 10000, 'the broker let go');
  assert.equal(heldBy(b.pid!, name!), [], 'no descriptor left in the broker');
  const again = await runAs(producer, process.execPath, [SENDER, socket, 'svc/big', `${300 * KiB}`, '1'], {}, [gid]);
  assert.is(again.code, 0, again.stderr);
  const second = await rx.waitJson((v) => v.ev === 'msg' && v.n === 1, 10000, 'the second message');
  assert.equal([second.len, second.shared], [300 * KiB, true]);
  assert.not.ok(poolFiles(producer.uid).includes(name!), 'the stale segment was swept');
  const gc = await runAs(producer, process.execPath, [QCOP, 'shm', 'gc'], {}, [gid]);
  assert.is(gc.code, 0, gc.stderr);
  assert.equal(poolFiles(producer.uid), [], 'nothing of the producer left');
  assert.is(b.child.exitCode, null, 'the broker lives');
  await assertHealthy(await sceneAround(Object.assign(b, { socket }), socket));
});

test.run();
