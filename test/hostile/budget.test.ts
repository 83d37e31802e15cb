// The global memory budget (SPEC §8): a receiver that stopped reading lets the broker's queues grow
// until `maxMemoryBytes`; past it new sends get ENOBUFS (the sender's 'error' event) and calls are
// refused with ENOBUFS, before anything already queued is dropped. Once the receiver goes, the
// memory is given back and everyone is served again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, spawnClient, waitFor } from '../helpers/procs.js';
import { MiB, configArgs, stats } from './budget-kit.js';
import { assertHealthy, op, scene, type Scene } from './harness.js';

const BUDGET = 4 * MiB;

let s: Scene;
test.before.each(async () => {
  // The per-receiver queue limit is above the budget: the budget is what stops the growth.
  s = await scene(configArgs({ maxMemoryBytes: BUDGET, maxQueueBytes: 16 * MiB }));
});
test.after.each(() => cleanup());

test('a stopped receiver fills the memory budget: ENOBUFS for new sends and calls, nothing queued dropped, broker healthy after', async () => {
  const stuck = await spawnClient(s.broker.socket, 'stuck');
  await op(stuck, { op: 'listen', channel: 'fill/ch', quiet: true });
  stuck.kill('SIGSTOP');
  const sender = await spawnClient(s.broker.socket, 'filler');
  await op(sender, { op: 'send', channel: 'fill/ch', message: 'fill(QString)', data: 'x'.repeat(2000), count: 4000 }, 30000);
  await op(sender, { op: 'flush' }, 30000);
  const refusals = sender.json().filter((v) => v.ev === 'error');
  assert.ok(refusals.length > 0, 'some sends were refused');
  assert.ok(refusals.every((e) => e.code === 'ENOBUFS'), `every refusal is ENOBUFS (${JSON.stringify(refusals[0])})`);

  // As large as the refused sends: it cannot fit the room they left.
  const call = await op(sender, { op: 'call', channel: 'fill/ch', message: 'now()', data: 'x'.repeat(2000), timeoutMs: 5000 }).then(
    () => assert.unreachable('the call was accepted'),
    (e) => e,
  );
  assert.is(call.code, 'ENOBUFS', call.message);

  const full = await stats(s.broker.socket);
  assert.is(full.dropped.slowConsumer, 0, 'nothing queued was dropped');
  assert.ok(full.memory.refused >= refusals.length + 1, `refusals counted (${full.memory.refused})`);
  assert.ok(full.memory.countedBytes <= BUDGET + 4096, `counted ${full.memory.countedBytes} within the budget (one message of slack)`);
  const q = full.queues.connections.find((c: any) => c.name === 'stuck');
  assert.ok(q.queuedBytes > BUDGET / 2, `the stopped receiver's queue took the budget (${q.queuedBytes})`);
  assert.ok(q.heldBytes <= q.queuedBytes, 'what it holds is counted');

  stuck.kill('SIGKILL');
  await stuck.exited;
  await waitFor(async () => (await stats(s.broker.socket)).memory.queuedBytes < MiB, 10000, 'the queue given back');
  await assertHealthy(s);
});

test.run();
