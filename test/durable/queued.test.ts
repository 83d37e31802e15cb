// SPEC §10 queued channels through real processes: stored while nobody listens, ordered delivery, acknowledgement, redelivery.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../runtime/index.js';
import { Proc, cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { durableBroker, listenerScript } from './helpers.js';

test.after.each(() => cleanup());

test('a message to a queued channel nobody listens to is stored, then delivered to the first listener', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'] });
  const sent = await runCli(['send', '--socket', broker.socket, 'app/hello', 'greet(int)', '1']);
  assert.is(sent.code, 0, sent.stderr);
  assert.equal(JSON.parse(sent.stdout), { receivers: 0, queued: true });
  const got = await runCli(['listen', '--socket', broker.socket, 'app/hello', '--count', '1', '--timeout', '20']);
  assert.is(got.code, 0, got.stderr);
  assert.equal(JSON.parse(got.stdout), { channel: 'app/hello', message: 'greet(int)', data: 1 });
  // Acknowledged: a second listener gets nothing.
  const again = await runCli(['listen', '--socket', broker.socket, 'app/hello', '--timeout', '0.5']);
  assert.is(again.stdout, '');
  const stats = JSON.parse((await runCli(['stats', '--socket', broker.socket])).stdout);
  assert.is(stats.durable.storedMessages, 0);
});

test('a listener that stops after --count leaves the rest stored, in order, for the next', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'] });
  const client = await connect({ socket: broker.socket });
  for (let i = 0; i < 5; i++) assert.is(await client.deliver('app/q', 'n(int)', i), 0);
  const first = await runCli(['listen', '--socket', broker.socket, 'app/q', '--count', '2', '--timeout', '20']);
  assert.equal(first.stdout.trim().split('\n').map((l) => JSON.parse(l).data), [0, 1]);
  const rest = await runCli(['listen', '--socket', broker.socket, 'app/*', '--count', '3', '--timeout', '20']);
  const lines = rest.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.map((l) => l.data), [2, 3, 4]);
  // Messages 2.. were delivered to the first listener (past its count) without acknowledgement: marked.
  assert.ok(lines[0].redelivered);
  await client.close();
});

test('broker kill -9 with 10,000 stored messages: after restart all are delivered in order, none twice', async () => {
  const dir = tempDir();
  const sock = path.join(dir, 'qcop.sock');
  let broker = await durableBroker(dir, { queued: ['app/*'], durability: 'batch' }, sock);
  const client = await connect({ socket: sock, name: 'sender', reconnect: false } as never);
  const N = 10_000;
  for (let i = 0; i < N; i++) client.send('app/bulk', 'n(int)', i);
  assert.equal(await client.flush(), { messages: N, unrouted: 0 });
  await client.close().catch(() => {});
  broker.kill('SIGKILL');
  await broker.exited;
  broker = await durableBroker(dir, { queued: ['app/*'], durability: 'batch' }, sock);
  const listener = new Proc(process.execPath, [listenerScript(dir), sock, 'app/bulk']);
  await waitFor(() => listener.json().filter((l) => l.n).length >= N, 120_000, `${N} messages (stderr ${broker.stderr.slice(-300)})`);
  const got = listener.json().filter((l) => l.n).map((l) => l.data);
  assert.is(got.length, N);
  for (let i = 0; i < N; i++) if (got[i] !== i) assert.unreachable(`message ${i} is ${got[i]}`);
  await waitFor(async () => {
    const s = JSON.parse((await runCli(['stats', '--socket', sock])).stdout);
    return s.durable.storedMessages === 0;
  }, 30_000, 'every message acknowledged');
});

test.run();
