// A registration flood (SPEC §8): ten connections at the per-connection limits (4096 listener names, 1024 watches), then gone at once.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, Proc, ROOT, runCli, waitFor } from '../helpers/procs.js';
import { assertHealthy, scene } from './harness.js';

const FLOOD = path.join(ROOT, 'test/hostile/fixtures/flood.mjs');
/** Default broker-wide bounds on distinct patterns (docs/CONFIG.md `maxPatterns`, `maxWatchPatterns`). */
const MAX_PATTERNS = 4096;
const MAX_WATCH_PATTERNS = 256;

test.after.each(() => cleanup());

async function channels(socket: string): Promise<number> {
  const r = await runCli(['stats', '--socket', socket]);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).channels;
}

test('ten connections at the per-connection limits: answered, then closed at once, the broker healthy throughout', async () => {
  const s = await scene();
  const before = await channels(s.broker.socket);
  const attacker = new Proc(process.execPath, [FLOOD, s.broker.socket, 'limits', '10']);
  await attacker.waitJson((v) => v.ev === 'sent', 20_000, 'the requests sent');
  // Every registration is tried against the watched patterns; the broker works through them in turns.
  await assertHealthy(s);

  const done = await attacker.waitJson((v) => v.ev === 'done', 50_000, 'every request answered');
  // Per connection: 768 exact watches and 3072 exact names always fit; patterns up to the broker-wide bounds.
  const watches = 10 * 768 + MAX_WATCH_PATTERNS;
  const listeners = 10 * 3072 + MAX_PATTERNS;
  assert.is(done.accepted, watches + listeners, JSON.stringify(done));
  assert.equal(done.refused, { ELIMIT: 10 * 5120 - watches - listeners });
  // Each exact watch heard its name registered, by the same connection's listener.
  assert.is(done.events, 10 * 768);

  // All ten go at once: 40,960 names to unregister, each told to the watches, in turns.
  attacker.kill('SIGKILL');
  await attacker.exited;
  await assertHealthy(s);
  await waitFor(async () => (await channels(s.broker.socket)) === before, 30_000, 'the flood unregistered');
});

test.run();
