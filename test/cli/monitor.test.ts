// qcop monitor and qcop top (SPEC §12, docs/MONITOR.md), with real processes: the events in order,
// patterns and the text form, a stopped monitor that never holds up others, top's figures, hostile requests.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../runtime/client/connect.js';
import type { Client } from '../../runtime/client/client.js';
import { encodeControl } from '../../runtime/protocol/control.js';
import { FIXTURES, Proc, QCOP, cleanup, runCli, spawnBroker, waitFor } from '../helpers/procs.js';
import { K, RawConn } from '../helpers/raw.js';

const clients: Client[] = [];
test.after.each(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await cleanup();
});

async function client(socket: string, name = 'test'): Promise<Client> {
  const c = await connect({ socket, name });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

/** Starts `qcop monitor ARGS` and waits until the broker counts it as a monitor. */
async function startMonitor(socket: string, args: string[] = []): Promise<Proc> {
  const m = new Proc(process.execPath, [QCOP, 'monitor', ...args, '--socket', socket]);
  const c = await client(socket, 'probe');
  await waitFor(async () => ((await c.stats()).monitors as { connections: number }).connections >= 1, 10000, 'the monitor');
  await c.close();
  return m;
}

const cli = (socket: string, args: string[]) => runCli([...args, '--socket', socket]);

test('monitor shows, in order: a listener registering, a send, a call with its reply, a call that fails, the listener killed', async () => {
  const broker = await spawnBroker();
  const mon = await startMonitor(broker.socket);
  const listener = new Proc(process.execPath, [QCOP, 'listen', 'svc/news', '--socket', broker.socket]);
  await waitFor(async () => (await cli(broker.socket, ['registered', 'svc/news'])).code === 0, 10000, 'the listener');
  const replier = new Proc(process.execPath, [path.join(FIXTURES, 'replier.mjs'), broker.socket]);
  await replier.waitJson((v) => v.ready === true, 10000, 'replier ready');
  assert.equal((await cli(broker.socket, ['send', 'svc/news', 'tick(int)', '7'])).stdout.trim(), '{"receivers":1}');
  await listener.waitJson((m) => m.data === 7, 10000, 'the message');
  const ok = await cli(broker.socket, ['call', 'svc/clock', 'now()', '{"a":1}']);
  assert.is(ok.code, 0, ok.stderr);
  const failed = await cli(broker.socket, ['call', 'svc/clock', 'fail()']);
  assert.is(failed.code, 1);
  listener.kill('SIGKILL');
  await mon.waitJson((e) => e.event === 'disconnect' && e.client?.pid === listener.pid, 10000, "the listener's disconnect");

  const ofInterest = (e: Record<string, any>) => ['svc/news', 'svc/clock'].includes(e.channel) || e.client?.pid === listener.pid;
  const mine = mon.json().filter(ofInterest);
  assert.equal(mine.map((e) => [e.event, e.channel ?? null, e.message ?? e.reason ?? null]), [
    ['connect', null, null], ['listen', 'svc/news', null], ['listen', 'svc/clock', null], ['send', 'svc/news', 'tick(int)'],
    ['call', 'svc/clock', 'now()'], ['reply', 'svc/clock', null], ['call', 'svc/clock', 'fail()'], ['fail', 'svc/clock', null],
    ['unlisten', 'svc/news', 'disconnect'], ['disconnect', null, null],
  ]);
  const [, listen, clockListen, send, call, reply, , fail] = mine;
  assert.equal([listen.client.pid, listen.client.user, clockListen.client.name], [listener.pid, 'root', 'replier']);
  assert.equal([send.receivers, send.data, send.from.name], [1, 7, 'qcop-cli']);
  assert.equal(call.data, { a: 1 });
  assert.equal([reply.id, reply.from.pid, reply.to.pid, reply.data], [call.id, replier.pid, call.from.pid, { echo: { a: 1 } }]);
  assert.equal([fail.code, fail.text], ['EBUSY', 'the clock is busy']);
  for (const e of mine) assert.match(e.time, /^\d{4}-\d\d-\d\dT/);
  mon.kill('SIGTERM');
  assert.is((await mon.exited).code, 0);
});

test('monitor PATTERN shows only matching channels; --format text prints one aligned line per event', async () => {
  const broker = await spawnBroker();
  const mon = await startMonitor(broker.socket, ['a/*', '--format', 'text']);
  const json = await startMonitor(broker.socket, ['a/*']);
  await cli(broker.socket, ['send', 'b/x', 'skip()']);
  await cli(broker.socket, ['send', 'a/x', 'seen(QString)', '"hi"']);
  await waitFor(() => mon.lines.some((l) => l.includes('seen(QString)')), 10000, 'the text line');
  await waitFor(() => json.json().length >= 1, 10000, 'the JSON line');
  assert.equal(json.json().map((e) => [e.event, e.channel]), [['send', 'a/x']], 'no connection events and nothing on b/x');
  const line = mon.lines.find((l) => l.includes('seen(QString)'))!;
  assert.match(line, /^\d\d:\d\d:\d\d\.\d{3}  send\s+a\/x\s+seen\(QString\)\s+from qcop-cli\[\d+\] root  → 0  "hi"$/);
  assert.not.ok(mon.lines.some((l) => l.includes('b/x')));
});

test('a stopped monitor loses events, is told how many, and never slows a sender or a listener', async () => {
  const broker = await spawnBroker(['--max-queue-bytes', '65536']);
  const mon = await startMonitor(broker.socket);
  const listener = await client(broker.socket, 'listener');
  let got = 0;
  await listener.listen('load/x', () => got++).ready;
  mon.child.kill('SIGSTOP');
  const sender = await client(broker.socket, 'sender');
  const N = 50_000;
  for (let i = 0; i < N; i++) if (!sender.send('load/x', 'n(int)', i)) await new Promise((r) => sender.once('drain', r));
  await sender.flush();
  await waitFor(() => got === N, 20000, `all ${N} messages at the listener (got ${got})`);
  const stats = await sender.stats();
  const monitorEntry = (stats.queues as { connections: Array<Record<string, unknown>> }).connections.find((c) => c.monitoring === true)!;
  assert.ok(Number(monitorEntry.lost) > 0, 'the monitor lost events');
  assert.is((stats.backpressure as { stuckReceivers: number }).stuckReceivers, 0, 'the monitor never held a sender');
  mon.child.kill('SIGCONT');
  // Told in one or more notices as the monitor catches up; together, exactly what was dropped.
  const told = () => [...mon.stderr.matchAll(/qcop monitor: (\d+) event\(s\) lost/g)].reduce((n, m) => n + Number(m[1]), 0);
  await waitFor(() => told() >= Number(monitorEntry.lost), 10000, `the loss told on stderr (${told()} so far)`);
  assert.is(told(), Number(monitorEntry.lost));
});

test('top --once: per-channel counts and receivers match what was sent; clients with their user', async () => {
  const broker = await spawnBroker();
  const c = await client(broker.socket, 'counter');
  await c.stats({ channels: true }); // counting starts with the first request that asks
  const listener = await client(broker.socket, 'topl');
  let got = 0;
  await listener.listen('top/a', () => got++).ready;
  for (let i = 0; i < 500; i++) c.send('top/a', 'v(QByteArray)', Buffer.alloc(100));
  for (let i = 0; i < 20; i++) c.send('top/b', 'w()');
  await c.flush();
  await waitFor(() => got === 500, 10000, 'the 500 messages');
  const r = await cli(broker.socket, ['top', '--once', '--interval', '0.2']);
  assert.is(r.code, 0, r.stderr);
  const snap = JSON.parse(r.stdout);
  const byName = Object.fromEntries(snap.channels.map((x: Record<string, unknown>) => [x.channel, x]));
  assert.equal([byName['top/a'].messages, byName['top/a'].bytes, byName['top/a'].receivers, byName['top/a'].dropped], [500, 500 * 102, 1, 0]);
  assert.equal([byName['top/b'].messages, byName['top/b'].receivers], [20, 0]);
  const topl = snap.connections.find((x: Record<string, unknown>) => x.name === 'topl');
  assert.equal([topl.user, topl.listeners, topl.lost], ['root', 1, 0]);
  assert.is(snap.intervalMs >= 200, true);
});

test('hostile monitor requests get EINVAL and the connection stays usable', async () => {
  const broker = await spawnBroker();
  const raw = await RawConn.greeted(broker.socket);
  const bad: Array<[Buffer, RegExp]> = [
    [Buffer.from([0xff, 0x00]), /not a CBOR map/],
    [encodeControl({ patterns: 'a/*' }), /must be a list/],
    [encodeControl({ patterns: Array.from({ length: 65 }, (_, i) => `p/${i}`) }), /more than 64/],
    [encodeControl({ patterns: ['a//b'] }), /empty segment/],
    [encodeControl({ patterns: [7] }), /not a string/],
  ];
  for (const [payload, why] of bad) {
    const f = await raw.request(K.Monitor, 0, 0, '', '', payload);
    assert.is(f.kind, K.Error);
    assert.is(f.message, 'EINVAL');
    assert.match(f.payload.toString(), why);
  }
  const ok = await raw.request(K.Monitor, 0, 0, '', '', encodeControl({ patterns: ['x/*'] }));
  assert.is(ok.kind, K.Result);
  const c = await client(broker.socket);
  c.send('x/y', 'hi()');
  const ev = await raw.next((f) => f.kind === K.Monitored);
  assert.is(ev.aux, ev.payload.length, 'no data bytes after the map for a message without data');
  const stop = await raw.request(K.Monitor, 0, 0, '', '', encodeControl({ stop: true }));
  assert.is(stop.kind, K.Result);
  assert.is(((await c.stats()).monitors as { connections: number }).connections, 0);
});

test.run();
