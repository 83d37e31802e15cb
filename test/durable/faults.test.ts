// SPEC §10 faults, each a real process killed for real: a listener in its handler, a torn log, a full disk, a broker mid-stream.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../runtime/index.js';
import { Proc, cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { durableBroker, listenerScript } from './helpers.js';

const mounts: string[] = [];
test.after.each(async () => {
  await cleanup();
  for (const m of mounts.splice(0)) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // not mounted
    }
    fs.rmSync(m, { recursive: true, force: true });
  }
});

const messagesOf = (p: Proc) => p.json().filter((l) => l.n);

test('a listener killed inside its handler: that message is delivered again once, marked redelivered', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'] });
  const slow = new Proc(process.execPath, [listenerScript(dir, 600_000), broker.socket, 'app/x']);
  await slow.waitJson((v) => v.ready, 20_000, 'listener ready');
  const client = await connect({ socket: broker.socket });
  assert.is(await client.deliver('app/x', 'job(int)', 7), 1);
  await slow.waitJson((v) => v.n === 1, 20_000, 'the message in the handler');
  slow.kill('SIGKILL');
  await slow.exited;
  const next = new Proc(process.execPath, [listenerScript(dir), broker.socket, 'app/x']);
  const line = await next.waitJson((v) => v.n === 1, 20_000, 'the message again');
  assert.equal([line.message, line.data, line.redelivered], ['job(int)', 7, true]);
  await new Promise((r) => setTimeout(r, 500));
  assert.is(messagesOf(next).length, 1, 'delivered once');
  await waitFor(async () => (await client.stats() as any).durable.storedMessages === 0, 20_000, 'acknowledged');
  await client.close();
});

test('broker kill -9 while a handler runs: after restart that message comes again, marked redelivered', async () => {
  const dir = tempDir();
  const sock = path.join(dir, 'qcop.sock');
  let broker = await durableBroker(dir, { queued: ['app/*'] }, sock);
  const busy = new Proc(process.execPath, [listenerScript(dir, 600_000), sock, 'app/k']);
  await busy.waitJson((v) => v.ready, 20_000, 'listener ready');
  const c = await connect({ socket: sock, reconnect: false } as never);
  await c.deliver('app/k', 'job(int)', 1);
  await c.deliver('app/k', 'job(int)', 2);
  await busy.waitJson((v) => v.n === 2, 20_000, 'both in handlers');
  await c.close().catch(() => {});
  broker.kill('SIGKILL');
  await broker.exited;
  busy.kill('SIGKILL');
  broker = await durableBroker(dir, { queued: ['app/*'] }, sock);
  const next = new Proc(process.execPath, [listenerScript(dir), sock, 'app/k']);
  await waitFor(() => messagesOf(next).length >= 2, 20_000, 'both again');
  assert.equal(messagesOf(next).map((l) => [l.data, l.redelivered]), [[1, true], [2, true]]);
});

test('a torn last record (log cut mid-record): the broker starts, reports it, delivers everything before it', async () => {
  const dir = tempDir();
  const sock = path.join(dir, 'qcop.sock');
  let broker = await durableBroker(dir, { queued: ['app/*'] }, sock);
  const client = await connect({ socket: sock });
  for (let i = 0; i < 5; i++) await client.deliver('app/t', 'n(int)', i);
  await client.close();
  broker.kill('SIGKILL');
  await broker.exited;
  const state = path.join(dir, 'state');
  const seg = path.join(state, fs.readdirSync(state).filter((n) => n.endsWith('.qlog')).sort().pop()!);
  fs.truncateSync(seg, fs.statSync(seg).size - 3);
  broker = await durableBroker(dir, { queued: ['app/*'] }, sock);
  const listener = new Proc(process.execPath, [listenerScript(dir), sock, 'app/t']);
  await waitFor(() => messagesOf(listener).length >= 4, 20_000, 'four messages');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(messagesOf(listener).map((l) => l.data), [0, 1, 2, 3]);
  assert.match(broker.stderr, /torn record/);
  const stats = JSON.parse((await runCli(['stats', '--socket', sock])).stdout);
  assert.is(stats.durable.tornRecords.length, 1);
});

test('a store on a small full file system: the sender gets ENOSPC, nothing stored is lost', async () => {
  if (process.geteuid?.() !== 0) assert.unreachable('this test mounts a tmpfs and must run as root (sudo node scripts/test.mjs durable/faults)');
  const dir = tempDir();
  // Outside the test's temporary folders: it is unmounted before it is removed.
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-test-tmpfs-'));
  mounts.push(state);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs', state]);
  const broker = await durableBroker(dir, { queued: ['app/*'], stateDir: state });
  const client = await connect({ socket: broker.socket });
  const blob = 'x'.repeat(3000);
  let stored = 0;
  let code = '';
  for (let i = 0; i < 200 && !code; i++) {
    try {
      await client.deliver('app/full', 'blob(int,QString)', [i, blob]);
      stored++;
    } catch (e) {
      code = (e as { code: string }).code;
    }
  }
  assert.is(code, 'ENOSPC');
  assert.ok(stored > 10, `${stored} stored first`);
  // Another try fails the same way, and the broker goes on serving.
  try {
    await client.deliver('app/full', 'blob(int,QString)', [999, blob]);
    assert.unreachable('stored on a full disk');
  } catch (e) {
    assert.is((e as { code: string }).code, 'ENOSPC');
  }
  await client.close();
  const listener = new Proc(process.execPath, [listenerScript(dir), broker.socket, 'app/full']);
  await waitFor(() => messagesOf(listener).length >= stored, 30_000, `${stored} messages`);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(messagesOf(listener).map((l) => l.data[0]), Array.from({ length: stored }, (_, i) => i));
});

test('broker kill -9 while a listener consumes: after restart the rest arrive in order, repeats only of unacknowledged ones', async () => {
  const dir = tempDir();
  const sock = path.join(dir, 'qcop.sock');
  const config = { queued: ['app/*'], durability: 'batch', maxUnackedPerClient: 16 };
  let broker = await durableBroker(dir, config, sock);
  const sender = await connect({ socket: sock });
  const N = 3000;
  for (let i = 0; i < N; i++) sender.send('app/s', 'n(int)', i);
  await sender.flush();
  await sender.close();
  // A listener that takes 1 ms per message; the broker dies under it.
  const listener = new Proc(process.execPath, [listenerScript(dir, 1), sock, 'app/s']);
  await waitFor(() => messagesOf(listener).length >= 200, 60_000, '200 messages');
  broker.kill('SIGKILL');
  await broker.exited;
  broker = await durableBroker(dir, config, sock);
  const data = () => messagesOf(listener).map((l) => l.data as number);
  await waitFor(() => new Set(data()).size >= N, 120_000, `all ${N} messages (${new Set(data()).size})`);
  const got = data();
  // In order on each connection: a repeat only steps back to a message not acknowledged when the broker died.
  let repeats = 0;
  for (let i = 1; i < got.length; i++) {
    if (got[i]! <= got[i - 1]!) {
      repeats += got[i - 1]! - got[i]! + 1;
      assert.ok(got[i - 1]! - got[i]! < 16 + 1, `stepped back from ${got[i - 1]} to ${got[i]}`);
    }
  }
  assert.ok(repeats <= 17, `${repeats} repeated`);
  assert.is(new Set(got).size, N);
});

test.run();
