// Broker options: the bounds of SPEC §8 have their documented defaults and refuse bad values, naming the key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveOptions, type BrokerOptions } from '../../../runtime/broker/options.js';

test('the memory and call bounds default to the values docs/CONFIG.md gives', () => {
  const o = resolveOptions({}, '/tmp/x.sock');
  assert.equal(
    [o.maxCallsInFlight, o.partialFrameTimeoutMs, o.maxPartialBytes, o.maxMemoryBytes],
    [1024, 10_000, 16 << 20, 64 << 20],
  );
});

test('backpressure is on by default with a stall of 1000 ms (docs/CONFIG.md)', () => {
  const o = resolveOptions({}, '/tmp/x.sock');
  assert.equal([o.backpressure, o.stallMs], [true, 1000]);
  assert.equal(resolveOptions({ backpressure: false, stallMs: 50 }, '/tmp/x.sock').backpressure, false);
});

const BAD: Array<[string, BrokerOptions, string]> = [
  ['a zero call limit', { maxCallsInFlight: 0 }, 'maxCallsInFlight'],
  ['a fractional timeout', { partialFrameTimeoutMs: 1.5 }, 'partialFrameTimeoutMs'],
  ['a memory budget below 1 MiB', { maxMemoryBytes: 1000 }, 'maxMemoryBytes'],
  ['a partial budget below one frame', { maxFrameBytes: 4 << 20, maxPartialBytes: 2 << 20, maxMemoryBytes: 64 << 20 }, 'maxPartialBytes'],
  ['a default partial budget below a raised frame limit', { maxFrameBytes: 32 << 20, maxMemoryBytes: 64 << 20 }, 'maxPartialBytes'],
  ['a backpressure that is not a boolean', { backpressure: 'no' as unknown as boolean }, 'backpressure'],
  ['a stall below 10 ms', { stallMs: 5 }, 'stallMs'],
  ['a memory budget below one frame', { maxFrameBytes: 4 << 20, maxPartialBytes: 4 << 20, maxMemoryBytes: 2 << 20 }, 'maxMemoryBytes'],
];

for (const [what, input, key] of BAD) {
  test(`${what} is refused with EINVAL naming ${key}`, () => {
    assert.throws(() => resolveOptions(input, '/tmp/x.sock'), (e: any) => e.code === 'EINVAL' && e.message.includes(`option ${key}:`));
  });
}

test.run();
