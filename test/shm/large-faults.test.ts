// Faults on the large-message path (PROTOCOL 8.4-8.7): a receiver killed mid-stream, a broker killed and restarted, a stopped receiver.
// @exclusive: it leaves a stale pool on purpose, which brokers started by other test files would reclaim.
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, startBroker, type Client } from '../../runtime/index.js';
import { listSegments } from '../../runtime/shm/index.js';
import { Proc, tempDir, waitFor } from '../helpers/procs.js';
import { pool } from './pool-env.js';

const FIX = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures');
const MiB = 1 << 20;
const blob = (i: number) => Buffer.alloc(MiB, i & 0xff);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const msgs = (p: Proc) => p.json().filter((v) => v.ev === 'msg');
const poolOf = (pid: number) => listSegments().filter((s) => s.key.startsWith(`qcop-pool/${pid}-`));




/** Sends `count` 1 MiB messages, waiting for 'drain' whenever send returns false; `each` runs after every send. */
async function stream(tx: Client, channel: string, count: number, each: (i: number) => Promise<void> | void = () => {}, refused = () => {}) {
  let refusals = 0;
  for (let i = 0; i < count; i++) {
    if (!tx.send(channel, 'blob', blob(i))) {
      refusals++;
      refused();
      await new Promise((r) => tx.once('drain', r));
    }
    await each(i);
  }
  return refusals;
}

test.after.each(pool.teardown);

test('a receiver killed with kill -9 mid-stream of 1 MiB messages leaks nothing and the stream goes on', async () => {
  const socket = path.join(tempDir(), 'qcop.sock');
  pool.broker = await startBroker({ socket });
  const keep = await pool.receiver(socket, 'stream');
  const victim = await pool.receiver(socket, 'stream');
  const tx = await pool.client(socket, { maxPoolBytes: 16 * MiB });
  await stream(tx, 'stream', 60, async (i) => {
    if (i === 20) {
      await waitFor(() => msgs(victim).length >= 10, 10000, 'victim reading');
      victim.kill('SIGKILL');
    }
  });
  await tx.flush();
  await waitFor(() => msgs(keep).length === 60, 20000, 'all 60 at the survivor');
  assert.equal(msgs(keep).map((v) => v.sha), Array.from({ length: 60 }, (_, i) => sha(blob(i))));
  await waitFor(() => tx.poolInUse.slots === 0, 5000, 'every slot back in the pool');
  const s = (await tx.stats()) as { clients: number; shm: Record<string, number> };
  assert.is(s.shm.slotsInUse, 0);
  assert.is(s.clients, 2);
  assert.ok(poolOf(process.pid).every((x) => !x.stale && !x.pids.includes(victim.pid)), 'no orphan');
  await tx.close();
  await waitFor(() => poolOf(process.pid).length === 0, 3000, 'pool removed with its sender');
});

test('a broker killed with kill -9 and restarted reclaims the pool of a dead sender; traffic works again', async () => {
  const socket = path.join(tempDir(), 'qcop.sock');
  const start = async () => {
    const b = new Proc(process.execPath, [path.join(FIX, 'shm-broker.mjs'), socket]);
    await b.waitJson((v) => v.ev === 'ready', 10000, 'broker ready');
    return b;
  };
  let b = await start();
  const rx = await pool.receiver(socket, 'restart');
  const tx = await pool.client(socket, { reconnectMaxDelayMs: 100 });
  const sender = new Proc(process.execPath, [path.join(FIX, 'shm-sender.mjs'), socket, 'restart', String(MiB), '2', '--stay']);
  await sender.waitJson((v) => v.ev === 'flushed', 10000, 'sender done');
  assert.ok(tx.send('restart', 'blob', blob(7)));
  await tx.flush();
  await waitFor(() => msgs(rx).length === 3, 10000, 'three messages before the crash');
  assert.ok(poolOf(sender.pid).length >= 1);
  sender.kill('SIGKILL');
  b.kill('SIGKILL');
  await Promise.all([sender.exited, b.exited]);
  await waitFor(() => poolOf(sender.pid).every((x) => x.stale), 3000, 'dead pool is stale');
  assert.ok(poolOf(sender.pid).length >= 1, 'the dead sender left its pool behind');
  b = await start();
  assert.is(poolOf(sender.pid).length, 0, 'reclaimed at broker start');
  await new Promise<void>((r) => (tx.connected ? r() : tx.once('reconnected', () => r())));
  await rx.waitJson((v) => v.ev === 'reconnected', 10000, 'receiver back');
  await waitFor(async () => (await tx.isRegistered('restart')), 5000, 'listener re-registered');
  assert.ok(tx.send('restart', 'blob', blob(9)));
  await tx.flush();
  await waitFor(() => msgs(rx).length === 4, 10000, 'message after the restart');
  assert.equal([msgs(rx)[3].sha, msgs(rx)[3].shared], [sha(blob(9)), true]);
  await waitFor(() => tx.poolInUse.slots === 0, 5000, 'slot freed by the new broker');
  b.kill('SIGTERM');
  await b.exited;
});

test('a SIGSTOPped receiver: send returns false, drain follows, nothing lost for the others, the stopped one is told how many it lost', async () => {
  const socket = path.join(tempDir(), 'qcop.sock');
  pool.broker = await startBroker({ socket });
  const fast = [await pool.receiver(socket, 'stall'), await pool.receiver(socket, 'stall')];
  const stopped = await pool.receiver(socket, 'stall');
  stopped.kill('SIGSTOP');
  const tx = await pool.client(socket, { maxPoolBytes: 16 * MiB });
  const N = 80;
  // The stopped receiver keeps the slots it was given valid (SPEC §3); past a quarter of the pool
  // the broker drops for it and tells the sender those slots need not hold it back.
  assert.ok((await stream(tx, 'stall', N)) > 0, 'send returned false, then drain came, while the receiver is stopped');
  await tx.flush();
  const held = tx.poolInUse;
  assert.ok(held.slots >= 1 && held.bytes <= 6 * MiB, `the stopped receiver holds a few slots (${held.slots})`);
  for (const r of fast) {
    await waitFor(() => msgs(r).length === N, 20000, 'every message at a fast receiver');
    assert.equal(msgs(r).map((v) => v.sha), Array.from({ length: N }, (_, i) => sha(blob(i))));
  }
  const dropped = ((await tx.stats()) as { dropped: Record<string, number> }).dropped.slowConsumer;
  assert.ok(dropped > 0, 'dropped for the stopped receiver');
  stopped.kill('SIGCONT');
  await waitFor(() => {
    const lost = stopped.json().filter((v) => v.ev === 'lost').reduce((n, v) => n + v.count, 0);
    return lost === dropped && lost + msgs(stopped).length === N;
  }, 10000, 'the stopped receiver accounts for every message');
  await waitFor(() => tx.poolInUse.slots === 0, 5000, 'every slot back');
});

test('under the disconnect policy, a receiver that holds slots without releasing for 5 s is closed and its slots come back', async () => {
  const socket = path.join(tempDir(), 'qcop.sock');
  pool.broker = await startBroker({ socket, slowConsumer: 'disconnect', logLevel: 'error' });
  const tx = await pool.client(socket);
  const rx = await connect({ broker: pool.broker!, reconnect: false });
  pool.clients.push(rx);
  const l = rx.listen('keep', (msg) => void msg.hold()); // never released
  await l.ready;
  tx.send('keep', 'blob', blob(1));
  await tx.flush();
  assert.is(tx.poolInUse.slots, 1);
  await new Promise((r) => rx.once('close', r));
  await waitFor(() => tx.poolInUse.slots === 0, 3000, 'slot back after the disconnection');
  assert.is(((await tx.stats()) as { disconnectedSlow: number }).disconnectedSlow, 1);
});

test.run();
