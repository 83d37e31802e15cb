// A full /dev/shm (SPEC §8): a normal large send() goes inline when it fits a frame, fails with ENOSPC when
// it does not, and never kills the sender with SIGBUS; once space is back the pool is used again.
// SharedMemory.create is ENOSPC too. posix_fallocate says so before any page is touched: no fault at all.
// The whole file runs in a private mount namespace with its own small tmpfs on /dev/shm (docs/PLATFORM-NOTES.md).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../runtime/native/index.js';
import { SharedMemory, SystemSemaphore } from '../../runtime/shm/index.js';
import { cleanup, Proc, ROOT, runCli } from '../helpers/procs.js';
import { assertHealthy, scene } from './harness.js';

const SELF = fileURLToPath(import.meta.url);
const SHM_FIXTURES = path.join(ROOT, 'test/shm/fixtures');
const KiB = 1 << 10;
const FILLER = '/dev/shm/filler';

if (process.env.QCOP_PRIVATE_SHM !== '1') {
  test('runs in a private /dev/shm (unshare -m, tmpfs of 8 MiB)', () => {
    const how = `as root: unshare -m --propagation private sh -c 'mount -t tmpfs -o size=8m tmpfs /dev/shm && QCOP_PRIVATE_SHM=1 node --import tsx ${path.relative(ROOT, SELF)}'`;
    assert.is(process.getuid?.(), 0, `this test mounts a tmpfs and must run as root; run it ${how}`);
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs -o size=8m,mode=1777 tmpfs /dev/shm && exec "$0" "$@"', process.execPath, '--import', 'tsx', SELF],
    { cwd: ROOT, env: { ...process.env, QCOP_PRIVATE_SHM: '1' }, encoding: 'utf8', timeout: 55_000 });
    process.stdout.write(r.stdout ?? '');
    process.stderr.write(r.stderr ?? '');
    assert.is(r.status, 0, `the tests inside the private /dev/shm passed (${r.error?.message ?? `signal ${r.signal}`})`);
  });
} else {
  process.once('SIGTERM', () => { // the outer run's timeout: leave no process behind
    cleanup();
    process.exit(1);
  });
  test.after.each(async () => {
    // The killed processes' mappings hold /dev/shm pages until they are really gone.
    await cleanup();
    fs.rmSync(FILLER, { force: true });
  });

  test('/dev/shm full: 300 KiB send() goes inline, 2 MiB send() is ENOSPC, nobody dies; space back: the pool again', async () => {
    const s = await scene();
    const rx = new Proc(process.execPath, [path.join(SHM_FIXTURES, 'shm-receiver.mjs'), s.broker.socket, 'full/ch']);
    await rx.waitJson((v) => v.ev === 'ready', 10000, 'the receiver');
    fill();
    const tx = new Proc(process.execPath, [path.join(SHM_FIXTURES, 'shm-sender.mjs'), s.broker.socket, 'full/ch', `${300 * KiB},${2048 * KiB}`, '1']);
    const end = await tx.exited;
    assert.equal([end.signal, end.code], [null, 0], `the sender was not killed (stderr: ${tx.stderr.slice(-300)})`);
    assert.equal(tx.json().filter((v) => v.ev !== 'flushed').map((v) => [v.ev, v.bytes, v.code]),
      [['sent', 300 * KiB, undefined], ['refused', 2048 * KiB, 'ENOSPC']]);
    assert.match(tx.json()[1].message, /too large to go inline/);
    const flushed = tx.json().find((v) => v.ev === 'flushed');
    assert.equal(flushed?.pool, { slots: 0, bytes: 0 }, 'nothing left in a pool');
    assert.is(flushed?.faults, 0, 'ENOSPC came from posix_fallocate: the fault guard never had to catch a SIGBUS');
    const got = await rx.waitJson((v) => v.ev === 'msg', 10000, 'the inline message');
    assert.equal([got.len, got.shared], [300 * KiB, false]);

    fs.rmSync(FILLER);
    const again = new Proc(process.execPath, [path.join(SHM_FIXTURES, 'shm-sender.mjs'), s.broker.socket, 'full/ch', `${300 * KiB}`, '1']);
    assert.equal((await again.exited).signal, null);
    const second = await rx.waitJson((v) => v.ev === 'msg' && v.n === 1, 10000, 'the pooled message');
    assert.equal([second.len, second.shared], [300 * KiB, true]);
    assert.is(rx.child.exitCode, null);
    const stats = await runCli(['stats', '--socket', s.broker.socket]);
    assert.is(JSON.parse(stats.stdout).shm.faults, 0, 'nor the broker\'s');
    await assertHealthy(s);
  });

  test('/dev/shm full: SharedMemory.create and SystemSemaphore.open are ENOSPC, leave nothing behind, fault nothing; space back: created', async () => {
    const key = `full-${process.pid}/seg`;
    fill();
    const faults = native().guardFaults();
    const codeOf = (e: { code?: string }) => e.code;
    for (const size of [64, 1 << 20]) {
      const code = await SharedMemory.create(key, size).then((seg) => { seg.detach(); return 'created'; }, codeOf);
      assert.is(code, 'ENOSPC', `${size} bytes`);
    }
    assert.is(await SystemSemaphore.open(key).then((sem) => { sem.close(); return 'opened'; }, codeOf), 'ENOSPC', 'a semaphore\'s registry');
    assert.equal(fs.readdirSync('/dev/shm').filter((e) => e.startsWith('qcop.')), [], 'nothing left behind');
    assert.is(native().guardFaults(), faults, 'no SIGBUS to catch');
    fs.rmSync(FILLER);
    const seg = await SharedMemory.create(key, 1 << 20);
    seg.buffer.fill(1);
    assert.not.ok(seg.poisoned);
    seg.detach();
  });
}

/** Fills /dev/shm to the last page: MiB writes, then pages, until ENOSPC. */
function fill(): void {
  const fd = fs.openSync(FILLER, 'w');
  try {
    for (const chunk of [Buffer.alloc(1 << 20, 1), Buffer.alloc(4 * KiB, 1)]) {
      for (;;) {
        try {
          fs.writeSync(fd, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

test.run();
