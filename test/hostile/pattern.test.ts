// Wildcard patterns built to make a backtracking matcher explode cost linear time (SPEC §8).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, runCli, spawnClient, waitFor } from '../helpers/procs.js';
import { assertHealthy, op, scene, type Scene } from './harness.js';

let s: Scene;
test.before.each(async () => {
  s = await scene();
});
test.after.each(() => cleanup());

test("listen '*a*a*a*a*a*a*a*a*a*b' then a send to a 120-byte channel of a's: routed, broker healthy", async () => {
  const attacker = await spawnClient(s.broker.socket, 'attacker');
  await op(attacker, { op: 'listen', channel: '*a*a*a*a*a*a*a*a*a*b', quiet: true });
  const channel = 'a'.repeat(120);
  const r = await runCli(['send', channel, 'm()', '--socket', s.broker.socket]);
  assert.is(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), { receivers: 0 });
  await assertHealthy(s);
});

test('patterns with 20 stars and long sets, then sends to fresh 255-byte channels: each routed, broker healthy', async () => {
  const attacker = await spawnClient(s.broker.socket, 'attacker');
  const patterns = ['*a'.repeat(20) + '*b', '*a'.repeat(20) + '*', '*' + '[a-c]'.repeat(50) + 'b*', '*' + 'a?'.repeat(120) + 'b*'];
  for (const p of patterns) await op(attacker, { op: 'listen', channel: p, quiet: true });
  // Every channel is new to the route cache, so each send tries every pattern.
  for (let i = 0; i < 20; i++) {
    const channel = 'a'.repeat(250) + String(i).padStart(5, 'x');
    await op(attacker, { op: 'send', channel, message: 'm()', data: i });
  }
  const sent = await op(attacker, { op: 'flush' });
  assert.equal(sent, { messages: 20, unrouted: 0 }, "'*a*a…*' matches every one of them");
  await assertHealthy(s);
});

test('a watch on a backtracking bomb while 255-character names come and go: events right, broker healthy', async () => {
  const watcher = await spawnClient(s.broker.socket, 'watcher');
  const holder = await spawnClient(s.broker.socket, 'holder');
  const hit = 'a'.repeat(254) + 'b';
  await op(holder, { op: 'listen', channel: hit, quiet: true });
  await op(watcher, { op: 'watch', channel: '*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b' });
  for (let i = 0; i < 10; i++) await op(holder, { op: 'listen', channel: 'a'.repeat(240 + i), quiet: true });
  await op(holder, { op: 'listen', channel: 'a'.repeat(200) + 'b', quiet: true });
  // Names of a's alone do not match (the final b is missing); the two that end in b do, the first one initially.
  const events = () => watcher.json().filter((v) => v.ev === 'watch').map((v) => `${v.type}:${v.channel.length}${v.initial ? '*' : ''}`);
  await waitFor(() => events().length >= 2, 10_000, 'the watch events');
  assert.equal(events(), ['registered:255*', 'registered:201']);
  await assertHealthy(s);
});

test.run();
