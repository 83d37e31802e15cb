// Behaviour without the native addon (QCOP_NATIVE=off): shared memory fails with ENONATIVE and says how to build it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { killChildren, spawnChild, uniqueKey } from './helpers.js';

test.after.each(killChildren);

test('with QCOP_NATIVE=off, SharedMemory.create rejects ENONATIVE with the how-to-build message', async () => {
  const child = spawnChild('create-no-native', [uniqueKey('off')], { ...process.env, QCOP_NATIVE: 'off' });
  const out = JSON.parse(await child.line(() => true)) as { code?: string; message?: string };
  assert.is(out.code, 'ENONATIVE');
  assert.match(out.message ?? '', 'npm run build:native');
  assert.match(out.message ?? '', 'QCOP_NATIVE=off');
  assert.match(out.message ?? '', 'apt-get install gcc');
  assert.is((await child.exited).code, 0);
});

test('with QCOP_NATIVE=off, nativeAvailable() is false and SystemSemaphore.open rejects ENONATIVE', async () => {
  const child = spawnChild('open-sem-no-native', [uniqueKey('off2')], { ...process.env, QCOP_NATIVE: 'off' });
  const out = JSON.parse(await child.line(() => true)) as { available?: boolean; code?: string };
  assert.equal(out, { available: false, code: 'ENONATIVE' });
  assert.is((await child.exited).code, 0);
});

test.run();
