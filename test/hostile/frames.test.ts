// Frames held partly read (SPEC §8): 200 connections each start a frame of 1 MiB − 1 byte and never
// finish it. The broker holds at most `maxPartialBytes` of them (the rest get ENOBUFS and are skipped,
// not held), closes each connection `partialFrameTimeoutMs` after its frame started, and its memory
// stays within the documented bound (docs/CONFIG.md "Memory bound").
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Proc, cleanup, waitFor } from '../helpers/procs.js';
import { MiB, configArgs, peakRss, rss, stats } from './budget-kit.js';
import { assertHealthy, scene, type Scene } from './harness.js';

const FIXTURE = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures/partial-frames.mjs');
const PARTIAL = 8 * MiB;
const OPTIONS = { maxPartialBytes: PARTIAL, partialFrameTimeoutMs: 3000 };

let s: Scene;
test.before.each(async () => {
  s = await scene(configArgs(OPTIONS));
});
test.after.each(() => cleanup());

test('200 connections each holding a frame of 1 MiB − 1 byte: bounded memory, ENOBUFS past the budget, ETIMEDOUT, broker healthy', async () => {
  const before = rss(s.broker.pid);
  const attacker = new Proc(process.execPath, [FIXTURE, s.broker.socket, '200', String(MiB - 1)]);
  await attacker.waitJson((v) => v.ev === 'sent', 40000, 'the attack written');
  // While the frames are held (or already timed out: either way within the bounds).
  const during = await stats(s.broker.socket);
  assert.ok(during.memory.partialBytes <= PARTIAL, `partial bytes ${during.memory.partialBytes} within maxPartialBytes`);
  const ended = attacker.waitJson((v) => v.ev === 'ended', 40000, 'every attacking connection closed');
  const peak = await peakRss(s.broker.pid, ended);

  // Documented bound (docs/CONFIG.md): at most maxPartialBytes of partial frames, plus what Node
  // keeps on top: the chunks read and dropped wait for V8's collector, which runs once about 64 MiB
  // of them accumulate; 32 MiB of slack for the heap. (Unbounded, the broker grew by 222 MB here.)
  const grown = peak - before;
  assert.ok(grown <= PARTIAL + 64 * MiB + 32 * MiB, `broker RSS grew by ${(grown / MiB).toFixed(1)} MiB during the attack`);

  const end = await ended;
  assert.is(end.closed, 200);
  assert.is(end.codes.ETIMEDOUT, 200, `each connection was closed for its incomplete frame (${JSON.stringify(end.codes)})`);
  const after = await stats(s.broker.socket);
  assert.ok(after.memory.refused >= 200 - PARTIAL / MiB, `frames past the budget were refused (${after.memory.refused})`);
  assert.is(end.codes.ENOBUFS, after.memory.refused, 'each refused frame was answered ENOBUFS');
  await waitFor(async () => (await stats(s.broker.socket)).memory.partialBytes === 0, 10000, 'the partial frames given back');
  await assertHealthy(s);
});

test.run();
