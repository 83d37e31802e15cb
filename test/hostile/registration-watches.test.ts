// A registration flood (SPEC §8): one connection sends 1024 pattern watches while 16,384 names are registered.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, Proc, ROOT } from '../helpers/procs.js';
import { assertHealthy, scene } from './harness.js';

const FLOOD = path.join(ROOT, 'test/hostile/fixtures/flood.mjs');
/** The default bound on distinct watched patterns (docs/CONFIG.md `maxWatchPatterns`). */
const MAX_WATCH_PATTERNS = 256;

test.after.each(() => cleanup());

test('1024 pattern watches from one connection with 16,384 names registered: all answered, the broker healthy throughout', async () => {
  const s = await scene();
  const crowd = new Proc(process.execPath, [FLOOD, s.broker.socket, 'names', '4']);
  const registered = await crowd.waitJson((v) => v.ev === 'done', 40_000, 'the 16,384 names');
  assert.is(registered.accepted, 16_384);

  const attacker = new Proc(process.execPath, [FLOOD, s.broker.socket, 'watches', '1024']);
  await attacker.waitJson((v) => v.ev === 'sent', 10_000, 'the watches sent');
  // Each pattern watch scans the 16,384 names for its initial report; the broker does it in turns
  // while everyone else is served, so the check runs in the middle of the flood.
  await assertHealthy(s);

  const done = await attacker.waitJson((v) => v.ev === 'done', 50_000, 'every watch answered');
  // 512 watches on one text (one pattern), then distinct texts until the broker-wide bound: the rest ELIMIT.
  const distinct = MAX_WATCH_PATTERNS - 1;
  assert.is(done.accepted, 512 + distinct, JSON.stringify(done));
  assert.equal(done.refused, { ELIMIT: 512 - distinct });
  // Every initial report is complete: '*/1?' matches fill/<c>/1<d> (4 × 10 names), '*/<i>' fill/<c>/<i> (4 names).
  assert.is(done.events, 512 * 40 + distinct * 4);

  attacker.kill();
  await attacker.exited;
  await assertHealthy(s);
});

test.run();
