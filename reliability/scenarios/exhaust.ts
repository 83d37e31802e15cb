// Resource exhaustion: few descriptors, a nearly full /dev/shm, a full disk under the socket folder. Clear
// errors, counted, nothing lost silently, and recovery once the resource is back.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect } from '../../runtime/index.js';
import { K, RawConn, helloFrame } from '../../test/helpers/raw.js';
import { Bystander } from '../lib/bystander.js';
import { Child, LIB, QCOPD, atCleanup, sleep, startQcopd, tempDir, waitFor } from '../lib/procs.js';
import { DAEMON_NODE_FLAGS } from '../../targets/daemon-flags.mjs';
import { check, newRow, type Row, type RunContext } from '../lib/row.js';

const isRoot = () => process.getuid?.() === 0;

export async function exhaustFds(_ctx: RunContext): Promise<Row> {
  const LIMIT = 64;
  const CONNS = 150;
  const row = newRow('exhaust-fds', `${CONNS} connections at once to a broker with ${LIMIT} descriptors (ulimit -n ${LIMIT})`);
  const socket = path.join(tempDir('fds'), 'qcop.sock');
  const broker = await startQcopd(socket, ['--log-level', 'warn'], (cmd) => ['/bin/sh', '-c', `ulimit -n ${LIMIT} && exec "$@"`, 'sh', ...cmd]);
  const bystander = await Bystander.start(socket, 'rel/fds-bystander');
  // Opened before the flood: a broker out of descriptors cannot accept `qcop stats`, but answers a client it already has.
  const watcher = await connect({ socket, name: 'fds-watcher', reconnect: false });
  watcher.on('error', () => {});
  const outcomes: Record<string, number> = {};
  const conns = await Promise.all(Array.from({ length: CONNS }, async (_, i) => {
    let raw: RawConn;
    try {
      raw = await RawConn.open(socket);
    } catch (e) {
      outcomes[`connect ${(e as { code?: string }).code}`] = (outcomes[`connect ${(e as { code?: string }).code}`] ?? 0) + 1;
      return null;
    }
    raw.socket.write(helloFrame(`fd${i}`, process.pid, 1, []));
    await raw.until(() => raw.closed || raw.frames.some((f) => f.kind === K.Welcome || f.kind === K.Error), 5000);
    const err = raw.frames.find((f) => f.kind === K.Error);
    const key = raw.frames.some((f) => f.kind === K.Welcome) ? 'served' : err ? `refused ${err.message}` : raw.closed ? 'closed without a word' : 'no answer';
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    return raw;
  }));
  const during = (await watcher.stats()) as any;
  await watcher.close();
  for (const c of conns) c?.socket.destroy();
  const closedAt = Date.now();
  let served = -1;
  await waitFor(async () => {
    try {
      const c = await connect({ socket, name: 'after', reconnect: false });
      await c.listen('rel/after', () => {}).ready;
      const n = await c.deliver('rel/after', 'm', 1);
      await c.close();
      served = n;
      return n === 1;
    } catch {
      return false;
    }
  }, 10000, 'a new client served').catch(() => {});
  const backMs = Date.now() - closedAt;
  const byOk = await bystander.stop();
  const d = during.descriptors as { limit: number; open: number; refused: number; acceptErrors: number };
  const logged = broker.stderr.split('\n').filter((l) => /descriptor/i.test(l));
  row.figures.push(
    `outcomes ${Object.entries(outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `broker counted: refused ${d.refused}, accept errors ${d.acceptErrors}, open ${d.open}/${d.limit}`,
    `a new client served ${backMs} ms after the connections closed`,
    `logged ${logged.length} line(s)${logged[0] ? `: "${logged[0].slice(0, 160)}"` : ''}`,
    bystander.describe(),
  );
  const unexplained = (outcomes['no answer'] ?? 0);
  check(row, unexplained === 0, `${unexplained} connections got no answer within 5 s`);
  check(row, (outcomes.served ?? 0) + d.refused + d.acceptErrors >= CONNS - (outcomes['connect ECONNREFUSED'] ?? 0) - (outcomes['connect EAGAIN'] ?? 0),
    `not every connection was served or counted: ${JSON.stringify(outcomes)}, broker refused ${d.refused}, accept errors ${d.acceptErrors}`);
  check(row, served === 1, 'no new client served once the connections closed');
  check(row, logged.length > 0, 'the exhaustion was not logged');
  check(row, byOk, `bystander: ${bystander.describe()}`);
  await bystander.close();
  broker.kill('SIGTERM');
  await broker.exited;
  return row;
}

export async function exhaustShm(_ctx: RunContext): Promise<Row> {
  const row = newRow('exhaust-shm', '/dev/shm a 16 MiB tmpfs (private mount namespace) filled to 256 KiB from full; 10 × 300 KiB and 10 × 2 MiB sent; then space given back and 10 × 300 KiB sent');
  if (!isRoot()) {
    row.failed.push('needs root (unshare -m, mount -t tmpfs): run `sudo npm run reliability`');
    return row;
  }
  const p = new Child('unshare', ['-m', '--propagation', 'private', '/bin/sh', '-c', 'mount -t tmpfs -o size=16m tmpfs /dev/shm && exec "$@"', 'sh', process.execPath, path.join(LIB, 'exhaust-shm.mjs'), String(256 * 1024)]);
  const r = await p.waitJson((v) => v.ev === 'result', 60000, 'the /dev/shm exhaustion result').catch((e) => {
    row.failed.push((e as Error).message);
    return null;
  });
  p.kill();
  if (!r) return row;
  const refusedCount = Object.values(r.refused as Record<string, number>).reduce((a, b) => a + b, 0);
  const errorsCount = Object.values(r.errorsWhileFull as Record<string, number>).reduce((a, b) => a + b, 0);
  row.figures.push(
    `while full: ${r.accepted} accepted, ${refusedCount} refused by send() ${JSON.stringify(r.refused)}, ${errorsCount} refused later ('error' event) ${JSON.stringify(r.errorsWhileFull)}; ${r.receivedWhileFull} received (${r.sharedWhileFull} through the pool); flush ${r.flushed.messages} routed; faults ${r.faults}; SharedMemory.create of 4 MiB: ${r.createCode}`,
    `refused with: ${Object.values(r.refusedMessages as Record<string, string>).map((m) => `"${m.slice(0, 120)}"`).join(', ')}`,
    `space back: ${r.receivedAfter} of 10 received, ${r.sharedAfter} through the pool; objects left ${r.leftAfter}`,
  );
  check(row, r.receivedWhileFull + refusedCount + errorsCount >= 20 && r.receivedWhileFull <= r.accepted, `while full, messages neither received nor refused: ${20 - r.receivedWhileFull - refusedCount - errorsCount}`);
  check(row, Object.keys(r.refused).every((c) => c === 'ENOSPC') && Object.keys(r.errorsWhileFull).every((c) => c === 'ENOSPC'), `refusals not ENOSPC: ${JSON.stringify(r.refused)} ${JSON.stringify(r.errorsWhileFull)}`);
  check(row, r.faults === 0, `${r.faults} faults caught`);
  check(row, r.createCode === 'ENOSPC', `SharedMemory.create on a full /dev/shm: ${r.createCode}, not ENOSPC`);
  check(row, r.receivedAfter === 10 && r.sharedAfter === 10, `after space returned: ${r.receivedAfter} received, ${r.sharedAfter} through the pool`);
  check(row, r.leftAfter === 0, `${r.leftAfter} objects left in the private /dev/shm`);
  return row;
}

export async function exhaustDisk(_ctx: RunContext): Promise<Row> {
  const row = newRow('exhaust-disk', 'socket folder on a 64 KiB / 32-inode tmpfs, filled (blocks and inodes)');
  if (!isRoot()) {
    row.failed.push('needs root (mount -t tmpfs): run `sudo npm run reliability`');
    return row;
  }
  const base = tempDir('disk');
  const mnt = path.join(base, 'mnt');
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,nr_inodes=32', 'tmpfs', mnt]);
  atCleanup(() => execFileSync('umount', ['-l', mnt]));
  const run = path.join(mnt, 'run');
  fs.mkdirSync(run);
  const fill = () => {
    let n = 0;
    try {
      for (;; n++) fs.writeFileSync(path.join(mnt, `fill${n}`), Buffer.alloc(8192));
    } catch { /* ENOSPC: full */ }
    try {
      for (;; n++) fs.writeFileSync(path.join(mnt, `fill${n}`), '');
    } catch { /* inodes gone too */ }
    return n;
  };
  const unfill = () => { for (const f of fs.readdirSync(mnt)) if (f.startsWith('fill')) fs.rmSync(path.join(mnt, f)); };
  const files = fill();
  const socket = path.join(run, 'qcop.sock');
  const t0 = Date.now();
  const p = new Child(process.execPath, [...DAEMON_NODE_FLAGS, QCOPD, '--socket', socket]);
  const exit = await Promise.race([p.exited, sleep(10000).then(() => null)]);
  const exitMs = Date.now() - t0;
  const said = p.stderr.trim().split('\n').pop() ?? '';
  if (!exit) p.kill();
  row.figures.push(`filled with ${files} files; start on the full folder: ${exit ? `exit ${exit.code} after ${exitMs} ms: "${said.slice(0, 200)}"` : 'still running after 10 s'}`);
  check(row, exit !== null && exit.code !== 0 && /ENOSPC/.test(said) && said.includes(socket), `a broker on a full socket folder did not exit with ENOSPC naming the socket: ${said}`);
  unfill();
  let served = false;
  try {
    const b = await startQcopd(socket);
    fill(); // full again while it runs: a socket connection takes no disk
    const c = await connect({ socket, name: 'disk', reconnect: false });
    await c.listen('rel/disk', () => {}).ready;
    served = (await c.deliver('rel/disk', 'm', 1)) === 1;
    await c.close();
    b.kill('SIGKILL');
    await b.exited;
    // Restarted on the full folder after a kill: the stale socket is replaced (an unlink frees what a bind takes).
    const again = await startQcopd(socket).then((x) => { x.kill('SIGTERM'); return 'the stale socket was replaced, serving'; }, (e: Error) => `refused: ${e.message.slice(0, 160)}`);
    row.figures.push(`space back: started and served a client (filled again while running: still served); restart after kill -9 on the full folder: ${again}`);
  } catch (e) {
    row.failed.push(`after space returned: ${(e as Error).message}`);
  }
  unfill();
  check(row, served, 'not served after space returned');
  return row;
}
