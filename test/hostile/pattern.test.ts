// Wildcard patterns built to make a backtracking matcher explode cost linear time (SPEC §8).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, runCli } from '../helpers/procs.js';
import { assertHealthy, op, scene, type Scene } from './harness.js';
import { spawnClient } from '../helpers/procs.js';

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

test.run();
