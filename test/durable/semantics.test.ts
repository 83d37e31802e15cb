// SPEC §10 semantics through a spawned broker: async acknowledgement, dead letters, limits, retained values on patterns and across restarts.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../runtime/index.js';
import { Proc, ROOT, cleanup, tempDir, waitFor } from '../helpers/procs.js';
import { durableBroker, listenerScript } from './helpers.js';

test.after.each(() => cleanup());

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as { code: string }).code;
  }
};

test('an async handler is acknowledged when its promise settles, not before', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'] });
  const a = await connect({ socket: broker.socket });
  let finish!: () => void;
  const got: unknown[] = [];
  const l = a.listen('app/async', (msg) => {
    got.push(msg.data);
    return new Promise<void>((r) => (finish = r));
  });
  await l.ready;
  assert.is(await a.deliver('app/async', 'x(int)', 1), 1);
  await waitFor(() => got.length === 1, 10_000, 'the message');
  const stats = async () => (await a.stats() as any).durable;
  assert.is((await stats()).storedMessages, 1);
  assert.is((await stats()).unacked, 1);
  finish();
  await waitFor(async () => (await stats()).storedMessages === 0, 10_000, 'acknowledged');
  await a.close();
});

test('maxDeliveries: a message whose handler never finishes goes to qcop/dead-letter, counted', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*', 'qcop/dead-letter'], maxDeliveries: 2 });
  const c = await connect({ socket: broker.socket });
  await c.deliver('app/poison', 'crash(int)', 13);
  for (let i = 1; i <= 2; i++) {
    const p = new Proc(process.execPath, [listenerScript(dir, 600_000), broker.socket, 'app/poison']);
    const line = await p.waitJson((v) => v.n === 1, 20_000, `delivery ${i}`);
    assert.is(line.redelivered, i > 1);
    p.kill('SIGKILL');
    await p.exited;
  }
  const dead = new Proc(process.execPath, [listenerScript(dir), broker.socket, 'qcop/dead-letter']);
  const d = await dead.waitJson((v) => v.n === 1, 20_000, 'the dead letter');
  assert.is(d.message, 'crash(int)');
  assert.equal({ channel: d.data.channel, message: d.data.message, deliveries: d.data.deliveries, data: d.data.data }, { channel: 'app/poison', message: 'crash(int)', deliveries: 2, data: 13 });
  const s = (await c.stats() as any).durable;
  assert.is(s.deadLetters, 1);
  assert.is(s.channels['app/poison'].deadLetters, 1);
  // Nobody gets it on app/poison any more.
  const after = new Proc(process.execPath, [listenerScript(dir), broker.socket, 'app/poison']);
  await after.waitJson((v) => v.ready, 20_000, 'ready');
  await new Promise((r) => setTimeout(r, 300));
  assert.is(after.json().filter((v) => v.n).length, 0);
  await c.close();
});

test('maxStoredBytes: a full store refuses with ENOBUFS and keeps what it has; shared-memory data are ENOTSUP', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'], maxStoredBytes: 4096 });
  const c = await connect({ socket: broker.socket });
  let ok = 0;
  let code = 'ok';
  while (code === 'ok' && ok < 100) {
    code = await codeOf(c.deliver('app/f', 'b(QString)', 'y'.repeat(500)));
    if (code === 'ok') ok++;
  }
  assert.is(code, 'ENOBUFS');
  assert.ok(ok >= 5 && ok < 9, `${ok} stored`);
  const got: unknown[] = [];
  const l = c.listen('app/f', (m) => void got.push(m.data));
  await l.ready;
  await waitFor(() => got.length === ok, 10_000, `${ok} messages`);
  // After they were consumed there is room again.
  await waitFor(async () => (await codeOf(c.deliver('app/f', 'b(QString)', 'z'))) === 'ok', 10_000, 'room again');
  await c.close();
});

test('retained values: a pattern listener gets every matching one first; queued ones survive a restart, others do not', async () => {
  const dir = tempDir();
  const sock = path.join(dir, 'qcop.sock');
  let broker = await durableBroker(dir, { queued: ['app/*'] }, sock);
  let c = await connect({ socket: sock });
  c.send('cfg/a', 'v(int)', 1, { retain: true });
  c.send('cfg/b', 'v(int)', 2, { retain: true });
  c.send('cfg/b', 'v(int)', 3, { retain: true }); // replaces 2
  assert.equal(await c.publish('app/state', 'mode(QString)', 'eco', { retain: true }), { receivers: 0, queued: true });
  await c.flush();
  const seen: Array<[string, unknown, boolean]> = [];
  const l = c.listen('*', (m) => void seen.push([m.channel, m.data, m.retained]));
  await l.ready;
  const sorted = () => [...seen].sort((x, y) => x[0].localeCompare(y[0]));
  // The retained values, then the queued message of app/state (not retained: an ordinary queued message).
  await waitFor(() => seen.length >= 4, 10_000, 'retained values');
  assert.equal(sorted(), [['app/state', 'eco', true], ['app/state', 'eco', false], ['cfg/a', 1, true], ['cfg/b', 3, true]]);
  await c.close();
  broker.kill('SIGKILL');
  await broker.exited;
  broker = await durableBroker(dir, { queued: ['app/*'] }, sock);
  c = await connect({ socket: sock });
  seen.length = 0;
  const l2 = c.listen('*', (m) => void seen.push([m.channel, m.data, m.retained]));
  await l2.ready;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(seen, [['app/state', 'eco', true]]);
  await c.close();
});

test('a listener closed with a message unacknowledged: it goes to the other listener, marked, without a disconnect', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'] });
  const a = await connect({ socket: broker.socket });
  const seenA: unknown[] = [];
  const la = a.listen('app/u', (m) => {
    seenA.push(m.data);
    return new Promise(() => {}); // never finishes
  });
  await la.ready;
  assert.is(await a.deliver('app/u', 'x(int)', 1), 1);
  await waitFor(() => seenA.length === 1, 10_000, 'A got it');
  const b = await connect({ socket: broker.socket });
  const seenB: Array<[unknown, boolean]> = [];
  const lb = b.listen('app/*', (m) => void seenB.push([m.data, m.redelivered]));
  await lb.ready;
  assert.equal(seenB, []);
  la.close();
  await waitFor(() => seenB.length === 1, 10_000, 'B got it');
  assert.equal(seenB, [[1, true]]);
  await waitFor(async () => (await b.stats() as any).durable.storedMessages === 0, 10_000, 'acknowledged by B');
  await a.close();
  await b.close();
});

test('qcop monitor sees a send to a queued channel once it is stored', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'] });
  const c = await connect({ socket: broker.socket });
  const events: Array<Record<string, unknown>> = [];
  const m = await c.monitor(['app/*'], (ev) => void events.push(ev as unknown as Record<string, unknown>));
  await c.deliver('app/m', 'seen(int)', 4);
  await waitFor(() => events.some((e) => e.event === 'send'), 10_000, 'the send event');
  const e = events.find((x) => x.event === 'send')!;
  assert.equal([e.channel, e.message, e.receivers], ['app/m', 'seen(int)', 0]);
  await m.stop();
  await c.close();
});

test('scripts/recover-queued.mjs reads the stored messages without the broker', async () => {
  const dir = tempDir();
  const broker = await durableBroker(dir, { queued: ['app/*'] });
  const c = await connect({ socket: broker.socket });
  for (let i = 0; i < 3; i++) await c.deliver('app/r', 'n(int)', i);
  c.send('app/r', 'keep(QString)', 'k', { retain: true });
  await c.flush();
  await c.close();
  broker.kill('SIGKILL');
  await broker.exited;
  const out = execFileSync(process.execPath, [path.join(ROOT, 'scripts/recover-queued.mjs'), path.join(dir, 'state')], { encoding: 'utf8' });
  const lines = out.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.slice(0, 3).map((l) => [l.channel, l.message, Buffer.from(l.data, 'base64')[0]]), [['app/r', 'n(int)', 0], ['app/r', 'n(int)', 1], ['app/r', 'n(int)', 2]]);
  assert.is(lines[4].retained, 'app/r');
});

test.run();
