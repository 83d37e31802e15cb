// Spawned qcopd with separate client processes: delivery, crashes, broker restart, slow consumers, ordering.
import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, spawnBroker, spawnClient, waitFor, type Proc } from '../helpers/procs.js';

test.after.each(() => cleanup());

async function done(p: Proc, op: string, tag: string, timeoutMs = 10000): Promise<any> {
  const line = await p.waitJson((v) => (v.ev === 'done' || v.ev === 'failed') && v.tag === tag, timeoutMs, `${op} ${tag}`);
  if (line.ev === 'failed') throw new Error(`${op} failed: ${line.code} ${line.message}`);
  return line.result;
}

let tags = 0;
async function run(p: Proc, cmd: Record<string, unknown>, timeoutMs?: number): Promise<any> {
  const tag = `t${++tags}`;
  p.command({ ...cmd, tag });
  return done(p, String(cmd.op), tag, timeoutMs);
}

const require = createRequire(import.meta.url);

function rssKiB(pid: number): number {
  const status = require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8') as string;
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

test('three client processes: exact, wildcard and call through a spawned qcopd', async () => {
  const broker = await spawnBroker();
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => spawnClient(broker.socket, n)));
  await run(b!, { op: 'listen', channel: 'demo/x' });
  await run(c!, { op: 'listen', channel: 'demo/*' });
  await run(c!, { op: 'listen', channel: 'svc/echo', reply: 'pong' });
  await run(a!, { op: 'send', channel: 'demo/x', message: 'hello(int)', data: 42 });
  assert.equal(await run(a!, { op: 'flush' }), { messages: 1, unrouted: 0 });
  const atB = await b!.waitJson((v) => v.ev === 'msg');
  const atC = await c!.waitJson((v) => v.ev === 'msg');
  assert.equal([atB.channel, atB.message, atB.data], ['demo/x', 'hello(int)', 42]);
  assert.equal([atC.via, atC.channel], ['demo/*', 'demo/x']);
  assert.is(await run(a!, { op: 'call', channel: 'svc/echo', message: 'ping()' }), 'pong');
  assert.is(await run(a!, { op: 'registered', channel: 'demo/anything' }), true);
});

test('listener killed with SIGKILL: watchers get unregistered and isRegistered turns false', async () => {
  const broker = await spawnBroker();
  const watcher = await spawnClient(broker.socket, 'watcher');
  const victim = await spawnClient(broker.socket, 'victim');
  await run(watcher, { op: 'watch', channel: 'QPE/Application/*' });
  await run(victim, { op: 'listen', channel: 'QPE/Application/victim' });
  await watcher.waitJson((v) => v.ev === 'watch' && v.type === 'registered' && v.channel === 'QPE/Application/victim');
  assert.is(await run(watcher, { op: 'registered', channel: 'QPE/Application/victim' }), true);
  victim.kill('SIGKILL');
  await watcher.waitJson((v) => v.ev === 'watch' && v.type === 'unregistered' && v.channel === 'QPE/Application/victim');
  assert.is(await run(watcher, { op: 'registered', channel: 'QPE/Application/victim' }), false);
});

test('broker killed with SIGKILL and restarted: clients reconnect, listeners and watches come back, traffic flows', async () => {
  const broker = await spawnBroker();
  const sender = await spawnClient(broker.socket, 'sender');
  const listener = await spawnClient(broker.socket, 'listener');
  const watcher = await spawnClient(broker.socket, 'watcher');
  await run(listener, { op: 'listen', channel: 'r/*' });
  await run(sender, { op: 'listen', channel: 'r/self' });
  await run(watcher, { op: 'watch', channel: 'late/*' });
  broker.kill('SIGKILL');
  await Promise.all([sender, listener, watcher].map((p) => p.waitJson((v) => v.ev === 'disconnected')));
  // Sent while the broker is down: buffered, routed after the reconnection. The sender listens on it
  // itself, and a reconnecting client re-registers its listeners before it sends its backlog.
  await run(sender, { op: 'send', channel: 'r/self', message: 'm()', data: 'while-down' });
  const again = await spawnBroker([], broker.socket);
  await Promise.all([sender, listener, watcher].map((p) => p.waitJson((v) => v.ev === 'reconnected', 10000)));
  assert.equal(await run(sender, { op: 'flush' }), { messages: 1, unrouted: 0 });
  await sender.waitJson((v) => v.ev === 'msg' && v.data === 'while-down');
  await run(sender, { op: 'send', channel: 'r/after', message: 'm()', data: 'after' });
  await listener.waitJson((v) => v.ev === 'msg' && v.data === 'after');
  await run(sender, { op: 'listen', channel: 'late/one' });
  await watcher.waitJson((v) => v.ev === 'watch' && v.type === 'registered' && v.channel === 'late/one');
  again.kill('SIGTERM');
  await again.exited;
});

test('a receiver stopped with SIGSTOP: the others get everything, broker memory stays bounded, the stopped one hears how many it lost', async () => {
  const limit = 4 << 20;
  const broker = await spawnBroker(['--max-queue-bytes', String(limit)]);
  const sender = await spawnClient(broker.socket, 'sender');
  const fast = [await spawnClient(broker.socket, 'fast1'), await spawnClient(broker.socket, 'fast2')];
  const stopped = await spawnClient(broker.socket, 'stopped');
  for (const r of [...fast, stopped]) await run(r, { op: 'listen', channel: 'flood', quiet: true });
  const rssBefore = rssKiB(broker.pid);
  process.kill(stopped.pid, 'SIGSTOP');
  const count = 40000;
  const batch = 2000;
  const payload = 'x'.repeat(400);
  // "Fast" receivers keep up by definition: the sender waits for them after each batch, so only the
  // stopped receiver can fall behind, whatever the machine's load.
  for (let sent = 0; sent < count; sent += batch) {
    await run(sender, { op: 'send', channel: 'flood', message: 'data(str)', data: payload, count: batch, flushEvery: 100, numbered: true, first: sent }, 60000);
    for (const r of fast) {
      let last: any;
      await waitFor(async () => (last = await run(r, { op: 'count' })).count === sent + batch, 30000, 'a fast receiver to get everything').catch((e) => {
        throw new Error(`${e.message}: ${JSON.stringify(last)}`);
      });
    }
  }
  for (const r of fast) assert.ok((await run(r, { op: 'count' })).inOrder, 'in order');
  const grewKiB = rssKiB(broker.pid) - rssBefore;
  // ~17 MB went to the stopped receiver's socket; the broker keeps at most its queue limit of it.
  assert.ok(grewKiB < 48 * 1024, `broker RSS grew ${grewKiB} KiB`);
  process.kill(stopped.pid, 'SIGCONT');
  await stopped.waitJson((v) => v.ev === 'lost', 20000, 'lost notice');
  // The loss may be reported in more than one notice: received + every notice = sent.
  const lostSum = () => stopped.json().filter((v) => v.ev === 'lost').reduce((n, v) => n + v.count, 0);
  await waitFor(async () => (await run(stopped, { op: 'count' })).count + lostSum() === count, 20000, 'received + lost = sent');
  assert.ok(lostSum() > 0, 'some were lost');
  assert.ok((await run(stopped, { op: 'count' })).inOrder, 'what arrived is in order');
});

test('ordering: three sender processes, three receiver processes see one order', async () => {
  const broker = await spawnBroker();
  const senders = await Promise.all(['s1', 's2', 's3'].map((n) => spawnClient(broker.socket, n)));
  const receivers = await Promise.all(['r1', 'r2', 'r3'].map((n) => spawnClient(broker.socket, n)));
  await Promise.all(receivers.map((r) => run(r, { op: 'listen', channel: 'ord/*' })));
  const n = 500;
  await Promise.all(senders.map((s, i) => run(s, { op: 'send', channel: `ord/${i}`, message: 'n(int)', count: n })));
  await Promise.all(senders.map((s) => run(s, { op: 'flush' })));
  await Promise.all(receivers.map((r) => waitFor(() => r.json().filter((v) => v.ev === 'msg').length === 3 * n, 20000, 'all messages')));
  const seqs = receivers.map((r) => r.json().filter((v) => v.ev === 'msg').map((v) => `${v.channel}#${v.data}`));
  assert.equal(seqs[1], seqs[0]);
  assert.equal(seqs[2], seqs[0]);
  for (let i = 0; i < 3; i++) {
    const mine = seqs[0]!.filter((x) => x.startsWith(`ord/${i}#`)).map((x) => Number(x.split('#')[1]));
    assert.equal(mine, [...Array(n).keys()]);
  }
});

test.run();
