// SPEC §2 backpressure with real processes: qcopd, a sender as fast as 'drain' allows, slow and stopped receivers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as path from 'node:path';
import { TOKEN, freePort, spawnQcopd, stop } from '../conformance/net.js';
import { FIXTURES, Proc, cleanup, spawnBroker, spawnClient, tempDir, waitFor } from '../helpers/procs.js';

test.after.each(() => cleanup());

let tags = 0;
async function run(p: Proc, cmd: Record<string, unknown>, timeoutMs = 10_000): Promise<any> {
  const tag = `t${++tags}`;
  p.command({ ...cmd, tag });
  const line = await p.waitJson((v) => (v.ev === 'done' || v.ev === 'failed') && v.tag === tag, timeoutMs, `${String(cmd.op)} ${tag}`);
  if (line.ev === 'failed') throw new Error(`${String(cmd.op)} failed: ${line.code} ${line.message}`);
  return line.result;
}

const lostSum = (p: Proc): number => p.json().filter((v) => v.ev === 'lost').reduce((n, v) => n + v.count, 0);

async function allArrive(r: Proc, n: number, timeoutMs = 90_000): Promise<void> {
  let last: any;
  await waitFor(async () => (last = await run(r, { op: 'count' })).count >= n, timeoutMs, 'every message').catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(last)}, lost ${lostSum(r)}`);
  });
}

// 64 KiB queues; 30,000 messages of ~430 bytes are some 13 MB: 200 times a queue.
const QUEUE = ['--max-queue-bytes', String(64 * 1024)];
const N = 30_000;
const PAYLOAD = 'x'.repeat(400);

test('receivers that read slowly but steadily lose nothing while the sender runs as fast as drain allows', async () => {
  const broker = await spawnBroker(QUEUE);
  const sender = await spawnClient(broker.socket, 'sender');
  const slow = await spawnClient(broker.socket, 'slow');
  const steady = await spawnClient(broker.socket, 'steady');
  await run(slow, { op: 'listen', channel: 'bp/flood', quiet: true, busyEvery: 50, busyMs: 2 });
  await run(steady, { op: 'listen', channel: 'bp/flood', quiet: true });
  await run(sender, { op: 'send', channel: 'bp/flood', message: 'data(str)', data: PAYLOAD, count: N, numbered: true, drain: true }, 120_000);
  for (const r of [slow, steady]) {
    await allArrive(r, N);
    const c = await run(r, { op: 'count' });
    assert.is(c.count, N);
    assert.ok(c.inOrder, 'in order');
    assert.is(lostSum(r), 0, 'nothing lost');
  }
});

test('a SIGSTOPped receiver is stuck after stallMs: the others get everything; after SIGCONT it is told exactly what it lost', async () => {
  const broker = await spawnBroker([...QUEUE, '--stall-ms', '300']);
  const sender = await spawnClient(broker.socket, 'sender');
  const live = [await spawnClient(broker.socket, 'live1'), await spawnClient(broker.socket, 'live2')];
  const stopped = await spawnClient(broker.socket, 'stopped');
  for (const r of [...live, stopped]) await run(r, { op: 'listen', channel: 'bp/flood', quiet: true });
  process.kill(stopped.pid, 'SIGSTOP');
  await run(sender, { op: 'send', channel: 'bp/flood', message: 'data(str)', data: PAYLOAD, count: N, numbered: true, drain: true }, 120_000);
  for (const r of live) {
    await allArrive(r, N);
    assert.ok((await run(r, { op: 'count' })).inOrder, 'in order');
    assert.is(lostSum(r), 0);
  }
  process.kill(stopped.pid, 'SIGCONT');
  await stopped.waitJson((v) => v.ev === 'lost', 20_000, 'lost notice');
  await waitFor(async () => (await run(stopped, { op: 'count' })).count + lostSum(stopped) === N, 20_000, 'received + lost = sent');
  assert.ok(lostSum(stopped) > 0, 'some were lost');
  assert.ok((await run(stopped, { op: 'count' })).inOrder, 'what arrived is in order');
});

test('a sender that listens on its own channel, with a slow receiver, loses nothing', async () => {
  const broker = await spawnBroker(QUEUE);
  const sender = await spawnClient(broker.socket, 'sender');
  const slow = await spawnClient(broker.socket, 'slow');
  await run(sender, { op: 'listen', channel: 'bp/self', quiet: true });
  await run(slow, { op: 'listen', channel: 'bp/self', quiet: true, busyEvery: 50, busyMs: 2 });
  const n = 10_000;
  await run(sender, { op: 'send', channel: 'bp/self', message: 'data(str)', data: PAYLOAD, count: n, numbered: true, drain: true }, 120_000);
  for (const r of [sender, slow]) {
    await allArrive(r, n);
    assert.is(lostSum(r), 0);
  }
});

test('a call whose replier is held back by a full queue completes', async () => {
  const broker = await spawnBroker(QUEUE);
  const sender = await spawnClient(broker.socket, 'sender');
  const replier = await spawnClient(broker.socket, 'replier');
  const caller = await spawnClient(broker.socket, 'caller');
  await run(replier, { op: 'listen', channel: 'bp/flood', quiet: true, busyEvery: 50, busyMs: 2 });
  await run(replier, { op: 'listen', channel: 'bp/svc', reply: 'pong' });
  sender.command({ op: 'send', channel: 'bp/flood', message: 'data(str)', data: PAYLOAD, count: N, numbered: true, drain: true, tag: 'flood' });
  await waitFor(async () => (await run(replier, { op: 'count' })).count > 1000, 30_000, 'the flood under way');
  assert.is(await run(caller, { op: 'call', channel: 'bp/svc', message: 'ping()', timeoutMs: 30_000 }, 40_000), 'pong');
  await allArrive(replier, N);
  assert.is(lostSum(replier), 0);
});

test('with --no-backpressure a stopped receiver is dropped for at the queue limit at once (counted, told)', async () => {
  const broker = await spawnBroker([...QUEUE, '--no-backpressure', '--stall-ms', '600000']);
  const sender = await spawnClient(broker.socket, 'sender');
  const live = await spawnClient(broker.socket, 'live');
  const stopped = await spawnClient(broker.socket, 'stopped');
  for (const r of [live, stopped]) await run(r, { op: 'listen', channel: 'bp/flood', quiet: true });
  process.kill(stopped.pid, 'SIGSTOP');
  const n = 10_000;
  await run(sender, { op: 'send', channel: 'bp/flood', message: 'data(str)', data: PAYLOAD, count: n, numbered: true, drain: true }, 120_000);
  // With a stall of ten minutes, only the old policy lets the sender finish: drops at the queue limit,
  // even for a live receiver that falls a little behind; each one counted and told.
  process.kill(stopped.pid, 'SIGCONT');
  for (const r of [live, stopped]) {
    await waitFor(async () => (await run(r, { op: 'count' })).count + lostSum(r) === n, 20_000, 'received + lost = sent');
  }
  assert.ok(lostSum(stopped) > 0, 'some were lost');
});

test('over TCP: a sender on a TCP connection is paused for a slow receiver and nothing is lost', async () => {
  const port = await freePort();
  const broker = await spawnQcopd([...QUEUE, '--tcp', `127.0.0.1:${port}`, '--tcp-token', TOKEN]);
  try {
    const sender = new Proc(process.execPath, [path.join(FIXTURES, 'client.mjs'), `tcp://127.0.0.1:${port}`, 'tcp-sender'], { QCOP_TEST_TOKEN: TOKEN });
    await sender.waitJson((v) => v.ev === 'ready', 10_000, 'tcp client ready');
    const slow = await spawnClient(broker.socket, 'slow');
    await run(slow, { op: 'listen', channel: 'bp/tcp', quiet: true, busyEvery: 50, busyMs: 2 });
    const n = 20_000;
    await run(sender, { op: 'send', channel: 'bp/tcp', message: 'data(str)', data: PAYLOAD, count: n, numbered: true, drain: true }, 120_000);
    await allArrive(slow, n);
    assert.ok((await run(slow, { op: 'count' })).inOrder);
    assert.is(lostSum(slow), 0);
  } finally {
    await stop(broker);
  }
});

/** Broker `a` (TCP) and broker `b` linked to it, exporting and importing bp/link/* both ways; 64 KiB queues, the link's own buffer 64 KiB. */
async function linkedPair(stallMs = 1000) {
  const env = { QCOP_TCP_TOKEN: '', XDG_RUNTIME_DIR: tempDir() };
  const port = await freePort();
  const args = [...QUEUE, '--stall-ms', String(stallMs)];
  const a = await spawnQcopd([...args, '--tcp', `127.0.0.1:${port}`], undefined, env);
  const b = await spawnQcopd([...args, '--link', `tcp://127.0.0.1:${port}`, '--export', 'bp/link/*', '--import', 'bp/link/*'], undefined, env);
  const probe = await spawnClient(b.socket, 'probe');
  await waitFor(async () => (await run(probe, { op: 'stats' })).carriers?.tcp?.links?.[0]?.state === 'up', 10_000, 'the link');
  return { a, b, stats: async () => (await run(probe, { op: 'stats' })).carriers.tcp.links[0] };
}

test('a link in both directions: a slow receiver on each broker holds back the sender on the other, nothing lost, in order', async () => {
  // A long stallMs: on a loaded machine a live receiver starved of CPU for a second must not count as stuck here.
  const { a, b, stats } = await linkedPair(5000);
  try {
    const senders = [await spawnClient(a.socket, 'sender-a'), await spawnClient(b.socket, 'sender-b')];
    const slow = [await spawnClient(b.socket, 'slow-b'), await spawnClient(a.socket, 'slow-a')];
    await run(slow[0]!, { op: 'listen', channel: 'bp/link/ab', quiet: true, busyEvery: 50, busyMs: 2 });
    await run(slow[1]!, { op: 'listen', channel: 'bp/link/ba', quiet: true, busyEvery: 50, busyMs: 2 });
    // The import listeners reach the far broker through the link: wait until each side sees them.
    for (const [s, ch] of [[senders[0]!, 'bp/link/ab'], [senders[1]!, 'bp/link/ba']] as const) {
      await waitFor(async () => (await run(s, { op: 'registered', channel: ch })) === true, 10_000, `a listener for ${ch}`);
    }
    const n = 20_000;
    await Promise.all([
      run(senders[0]!, { op: 'send', channel: 'bp/link/ab', message: 'data(str)', data: PAYLOAD, count: n, numbered: true, drain: true }, 120_000),
      run(senders[1]!, { op: 'send', channel: 'bp/link/ba', message: 'data(str)', data: PAYLOAD, count: n, numbered: true, drain: true }, 120_000),
    ]);
    for (const r of slow) {
      await allArrive(r, n);
      assert.ok((await run(r, { op: 'count' })).inOrder, 'in order');
      assert.is(lostSum(r), 0, 'nothing lost');
    }
    const link = await stats();
    assert.is(link.lost, 0, 'the link lost nothing');
    assert.ok(link.exported >= n && link.imported >= n, `carried ${link.exported} out, ${link.imported} in`);
  } finally {
    await Promise.all([stop(a), stop(b)]);
  }
});

test('a link whose far broker has a stopped receiver: the far broker declares it stuck, the live receivers there get everything', async () => {
  const { a, b } = await linkedPair(300);
  try {
    const sender = await spawnClient(b.socket, 'sender');
    const live = await spawnClient(a.socket, 'live');
    const stopped = await spawnClient(a.socket, 'stopped');
    for (const r of [live, stopped]) await run(r, { op: 'listen', channel: 'bp/link/x', quiet: true });
    await waitFor(async () => (await run(sender, { op: 'registered', channel: 'bp/link/x' })) === true, 10_000, 'the listeners seen through the link');
    process.kill(stopped.pid, 'SIGSTOP');
    const n = 20_000;
    await run(sender, { op: 'send', channel: 'bp/link/x', message: 'data(str)', data: PAYLOAD, count: n, numbered: true, drain: true }, 120_000);
    await allArrive(live, n);
    assert.ok((await run(live, { op: 'count' })).inOrder, 'in order');
    assert.is(lostSum(live), 0);
    process.kill(stopped.pid, 'SIGCONT');
    await waitFor(async () => (await run(stopped, { op: 'count' })).count + lostSum(stopped) === n, 20_000, 'received + lost = sent');
    assert.ok(lostSum(stopped) > 0, 'the stopped one was told it lost some');
  } finally {
    await Promise.all([stop(a), stop(b)]);
  }
});

test.run();
