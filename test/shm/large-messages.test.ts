// Large messages by descriptor (PROTOCOL 8): intact delivery to receiver processes, inline fallbacks, the no-addon path.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../runtime/index.js';
import { listSegments } from '../../runtime/shm/index.js';
import { Proc, waitFor } from '../helpers/procs.js';
import { pool } from './pool-env.js';
import { freePort, spawnQcopd, stop, TOKEN } from '../conformance/net.js';

const FIX = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MiB = 1 << 20;





test.after.each(pool.teardown);

test('1 MiB and 16 MiB Buffers reach four receiver processes intact, through the pool, with no copy in the broker', async () => {
  const socket = await pool.setup();
  const rx = await Promise.all([0, 1, 2, 3].map(() => pool.receiver(socket, 'big/data')));
  const tx = await pool.client(socket);
  const payloads = [randomBytes(MiB), randomBytes(MiB), randomBytes(16 * MiB), randomBytes(MiB), randomBytes(16 * MiB)];
  for (const p of payloads) {
    if (!tx.send('big/data', 'blob', p)) await new Promise((r) => tx.once('drain', r));
  }
  assert.equal(await tx.flush(), { messages: payloads.length, unrouted: 0 });
  for (const r of rx) {
    await waitFor(() => r.json().filter((v) => v.ev === 'msg').length === payloads.length, 20000, 'every message');
    const got = r.json().filter((v) => v.ev === 'msg');
    assert.equal(got.map((v) => v.sha), payloads.map(sha));
    assert.ok(got.every((v) => v.shared === true), 'delivered by descriptor');
  }
  await waitFor(() => tx.poolInUse.slots === 0, 5000, 'every slot freed');
  const s = (await tx.stats()).shm as Record<string, number>;
  assert.is(s.messages, payloads.length);
  assert.is(s.inlined, 0);
  assert.is(s.slotsInUse, 0);
  // Pool segments are private to the user and live only while their sender is connected.
  const mine = listSegments().filter((x) => x.key.startsWith(`qcop-pool/${process.pid}-`));
  assert.ok(mine.length >= 1 && mine.every((x) => !x.stale && x.uid === process.getuid!()));
  await tx.close();
  await waitFor(() => listSegments().every((x) => !x.key.startsWith(`qcop-pool/${process.pid}-`)), 3000, 'pool removed after close');
});

test('data between the threshold and the frame limit still go inline when shm is off, and a receiver without the addon gets them inline', async () => {
  const socket = await pool.setup();
  const mapped = await pool.receiver(socket, 'mixed');
  const plain = await pool.receiver(socket, 'mixed', { QCOP_NATIVE: 'off' });
  const tx = await pool.client(socket);
  const mid = randomBytes(512 << 10);
  const big = randomBytes(2 * MiB);
  tx.send('mixed', 'mid', mid);
  tx.send('mixed', 'big', big);
  tx.send('mixed', 'small', randomBytes(100));
  await tx.flush();
  await waitFor(() => mapped.json().filter((v) => v.ev === 'msg').length === 3, 10000, 'mapped receiver');
  assert.equal(mapped.json().filter((v) => v.ev === 'msg').map((v) => v.shared), [true, true, false]);
  // The receiver that cannot map gets 512 KiB inline (the broker reads the slot) and is told it lost the 2 MiB one.
  await plain.waitJson((v) => v.ev === 'lost', 10000, 'lost notice');
  await waitFor(() => plain.json().filter((v) => v.ev === 'msg').length === 2, 10000, 'inline messages');
  const got = plain.json().filter((v) => v.ev === 'msg');
  assert.equal(got.map((v) => [v.message, v.shared]), [['mid', false], ['small', false]]);
  assert.is(got[0].sha, sha(mid));
  assert.equal(plain.json().find((v) => v.ev === 'lost'), { ev: 'lost', count: 1 });
  const s = (await tx.stats()) as { shm: Record<string, number>; dropped: Record<string, number> };
  assert.is(s.shm.inlined, 1);
  assert.is(s.shm.dropped, 1);
  assert.is(s.dropped.shm, 1);
});

test('without the addon (QCOP_NATIVE=off) 2 MiB fails EMSGSIZE with the reason, 100 KiB still goes inline', async () => {
  const socket = await pool.setup();
  const rx = await pool.receiver(socket, 'off');
  const p = new Proc(process.execPath, [path.join(FIX, 'shm-sender.mjs'), socket, 'off', String(2 * MiB) + ',' + String(100 << 10)], { QCOP_NATIVE: 'off' });
  const refused = await p.waitJson((v) => v.ev === 'refused', 10000, 'refusal');
  assert.is(refused.code, 'EMSGSIZE');
  assert.match(refused.message, 'shared memory');
  assert.match(refused.message, 'QCOP_NATIVE=off');
  assert.match(refused.message, 'npm run build:native');
  const flushed = await p.waitJson((v) => v.ev === 'flushed', 10000, 'flush');
  assert.is(flushed.messages, 1);
  const msg = await rx.waitJson((v) => v.ev === 'msg', 10000, 'inline message');
  assert.equal([msg.len, msg.shared], [(100 << 10), false]);
  assert.is((await p.exited).code, 0);
});

test('a client with shm: false, or data above maxPoolBytes, gets EMSGSIZE naming the reason', async () => {
  const socket = await pool.setup();
  const off = await pool.client(socket, { shm: false });
  assert.throws(() => off.send('x', 'y', Buffer.alloc(2 * MiB)), /EMSGSIZE.*shm: false/);
  const small = await pool.client(socket, { maxPoolBytes: 4 * MiB });
  assert.throws(() => small.send('x', 'y', Buffer.alloc(1.5 * MiB)), /EMSGSIZE.*maxPoolBytes/);
  assert.ok(small.send('x', 'y', Buffer.alloc(0.75 * MiB)));
  assert.equal(await small.flush(), { messages: 1, unrouted: 1 });
});

test('in-process clients use the pool too; msg.copyData() stays valid, msg.bytes only during the handler or a hold()', async () => {
  const socket = await pool.setup();
  const a = await pool.client(socket);
  const b = await connect({ broker: pool.broker! });
  pool.clients.push(b);
  const payload = randomBytes(MiB);
  const seen: Array<{ data: unknown; msgBytes: () => Buffer; held?: Buffer; release?: () => void }> = [];
  const l = b.listen('hold', (msg) => {
    const release = msg.message === 'hold' ? msg.hold() : undefined;
    seen.push({ data: msg.message === 'data' ? msg.copyData() : undefined, msgBytes: () => msg.bytes, release });
  });
  await l.ready;
  a.send('hold', 'data', payload);
  a.send('hold', 'late', payload);
  a.send('hold', 'hold', payload);
  await a.flush();
  await waitFor(() => seen.length === 3, 5000, 'three messages');
  assert.is(sha(seen[0]!.data as Buffer), sha(payload));
  assert.throws(() => seen[1]!.msgBytes(), /ECLOSED/);
  assert.ok(seen[2]!.msgBytes().length > MiB, 'held message still readable');
  assert.is(a.poolInUse.slots, 1);
  seen[2]!.release!();
  await waitFor(() => a.poolInUse.slots === 0, 5000, 'slot freed after the hold');
  assert.is(sha(seen[0]!.data as Buffer), sha(payload), 'copied data outlive the slot');
});

test('while a large send waits for a slot, later sends and flush wait behind it: order is kept, nothing lost, drain follows', async () => {
  const socket = await pool.setup();
  const tx = await pool.client(socket, { maxPoolBytes: 4 * MiB, highWaterMark: 4 * MiB });
  const rx = await connect({ broker: pool.broker! });
  pool.clients.push(rx);
  const order: string[] = [];
  let lost = 0;
  rx.on('lost', ({ count }: { count: number }) => (lost += count));
  const l = rx.listen('order', (msg) => order.push(`${msg.message}:${msg.shared ? (msg.data as Buffer)[0] : msg.data}`));
  await l.ready;
  // Sent in one go (ignoring false): four slots fit the 4 MiB pool, the rest wait in the client.
  const results: boolean[] = [];
  for (let i = 0; i < 6; i++) results.push(tx.send('order', `big${i}`, Buffer.alloc(900 << 10, i)));
  assert.equal(results, [true, false, false, false, false, false]);
  assert.ok(tx.bufferedBytes >= 2 * (900 << 10), 'two sends wait for slots');
  tx.send('order', 'small', 1);
  let drained = false;
  tx.once('drain', () => (drained = true));
  assert.equal(await tx.flush(), { messages: 7, unrouted: 0 });
  // Routed in one tick, the receiver cannot release in between: past a quarter of the pool it is
  // dropped for (and told); what it gets is in order, the small send last.
  await waitFor(() => order.length + lost === 7, 5000, 'everything accounted for');
  const expected = ['big0:0', 'big1:1', 'big2:2', 'big3:3', 'big4:4', 'big5:5', 'small:1'];
  assert.equal(order, expected.filter((x) => order.includes(x)));
  assert.is(order.at(-1), 'small:1');
  await waitFor(() => drained, 5000, 'drain');
});

test('pool segments are 0600, or 0640 with the broker group: only the producer writes, exactly those who may receive read', async () => {
  for (const group of [undefined, process.getgid!()]) {
    const socket = await pool.setup(group === undefined ? {} : { group });
    const tx = await pool.client(socket);
    tx.send('perm', 'blob', Buffer.alloc(MiB));
    await tx.flush();
    const mine = listSegments().filter((x) => x.key.startsWith(`qcop-pool/${process.pid}-`));
    assert.is(mine.length, 1);
    const st = fs.statSync(`/dev/shm/${mine[0]!.name}`);
    assert.is(st.mode & 0o777, group === undefined ? 0o600 : 0o640);
    if (group !== undefined) assert.is(st.gid, group);
    await tx.close();
    await pool.broker!.close();
    pool.broker = null;
  }
});

test('a TCP receiver never maps: it gets data up to the frame limit inline and a lost notice beyond', async () => {
  const port = await freePort();
  const qcopd = await spawnQcopd(['--tcp', `127.0.0.1:${port}`, '--tcp-token', TOKEN]);
  try {
    const remote = await connect({ url: `tcp://127.0.0.1:${port}`, transport: { token: TOKEN } });
    pool.clients.push(remote);
    const got: Array<[string, boolean, string]> = [];
    let lost = 0;
    remote.on('lost', ({ count }: { count: number }) => (lost += count));
    const l = remote.listen('tcp/big', (msg) => got.push([msg.message, msg.shared, sha(msg.data as Buffer)]));
    await l.ready;
    const tx = await pool.client(qcopd.socket);
    const mid = randomBytes(700 << 10);
    tx.send('tcp/big', 'mid', mid);
    tx.send('tcp/big', 'big', randomBytes(3 * MiB));
    await tx.flush();
    await waitFor(() => got.length === 1 && lost === 1, 10000, 'inline copy and lost notice');
    assert.equal(got, [['mid', false, sha(mid)]]);
    const s = (await tx.stats()) as { shm: Record<string, number> };
    assert.equal([s.shm.messages, s.shm.inlined, s.shm.dropped], [2, 1, 1]);
  } finally {
    await stop(qcopd);
  }
});

test.run();
