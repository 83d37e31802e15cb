// The sender's pool allocator (runtime/client/pool.ts): first fit, coalescing, growth, retiring, the half-pool pressure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LOAN_HEAD, SendPool, type Slot } from '../../../runtime/client/pool.js';
import { nativeAvailable } from '../../../runtime/native/index.js';

const MiB = 1 << 20;

function pool(max: number) {
  const log: string[] = [];
  const p = new SendPool((i) => log.push(`announce ${i}`), (i) => log.push(`retire ${i}`));
  p.maxPoolBytes = max;
  return { p, log };
}

// The pool needs the addon; without it this file fails loudly rather than skipping.
if (!nativeAvailable()) throw new Error('the native addon is missing: build it with `npm run build:native`');
const run = test;

run('slots are 64-byte aligned, first fit, and freed ranges coalesce so a large slot fits again', () => {
  const { p, log } = pool(64 * MiB);
  try {
    const a = p.alloc(100)!;
    const b = p.alloc(1000)!;
    const c = p.alloc(10)!;
    assert.equal([a.offset, b.offset, c.offset], [0, 128, 1152]);
    assert.equal([a.segment, b.segment, a.buffer.length], [0, 0, 100]);
    assert.equal(log, ['announce 0']);
    assert.ok(p.free(b.id));
    assert.not.ok(p.free(b.id), 'a slot is freed once');
    assert.is(p.alloc(900)!.offset, 128, 'first fit reuses the hole');
    const rest: Slot[] = [];
    for (let s; (s = p.alloc(MiB)); ) rest.push(s);
    assert.ok(rest.length > 15, 'the pool grows segment by segment');
    assert.ok(p.pressured);
    assert.is(p.alloc(MiB), null, 'full');
    for (const s of rest) p.free(s.id);
    assert.ok(p.inUse.slots <= 3);
  } finally {
    p.reset();
  }
});

run('a message larger than a segment gets a segment of its own; idle segments are retired to make room', () => {
  const { p, log } = pool(32 * MiB);
  try {
    const small = p.alloc(MiB)!;
    p.free(small.id);
    const big = p.alloc(20 * MiB)!;
    assert.ok(big, 'fits after retiring the idle 16 MiB segment');
    assert.equal(log, ['announce 0', 'retire 0', 'announce 1']);
    assert.is(big.buffer.length, 20 * MiB);
    assert.is(p.alloc(30 * MiB), null, 'more than the pool has left');
  } finally {
    p.reset();
  }
});

run('reset forgets every slot (a new broker gets a fresh pool)', () => {
  const { p } = pool(32 * MiB);
  const s = p.alloc(MiB)!;
  p.reset();
  assert.not.ok(p.free(s.id));
  assert.equal(p.inUse, { slots: 0, bytes: 0 });
  assert.ok(p.alloc(MiB));
  p.reset();
});

test('loans: an 8-byte-aligned buffer inside a slot; claimed once (also as a prefix), given back once', () => {
  const { p } = pool(32 * MiB);
  try {
    const a = p.loan(1000)!;
    assert.is(a.length, 1000);
    assert.is(a.byteOffset % 8, 0, 'aligned for typed arrays');
    assert.is(p.outstanding, 1);
    assert.is(p.inUse.bytes, 1024, 'one 64-byte-rounded slot for head and data');
    assert.is(p.claim(Buffer.alloc(1000)), undefined, 'an ordinary buffer is no loan');
    assert.is(p.claim(a.subarray(1)), undefined, 'a view not starting at the loan is no loan');
    const c = p.claim(a.subarray(0, 10))!;
    assert.ok(c.slot, 'a prefix claims the loan');
    assert.is(c.slot.length, LOAN_HEAD + 1000);
    assert.is(p.claim(a), undefined, 'claimed once');
    assert.is(p.outstanding, 0);
    const b = p.loan(5000)!;
    assert.ok(p.unloan(b));
    assert.not.ok(p.unloan(b), 'given back once');
    assert.is(p.inUse.slots, 1, 'the claimed slot stays in flight until freed; the given-back one is free');
  } finally {
    p.reset();
  }
});

test('a loan outstanding when the pool is reset stays mapped, and comes back as a copy of its bytes', () => {
  const { p } = pool(32 * MiB);
  const a = p.loan(MiB)!;
  a.fill(7);
  const b = p.loan(MiB)!;
  p.reset();
  assert.is(a.length, MiB, 'still mapped after the reset');
  const c = p.claim(a.subarray(0, 100))!;
  assert.ok(c.copy && !c.slot);
  assert.equal([c.copy.length, c.copy[0], c.copy[99]], [100, 7, 7]);
  assert.is(b.length, MiB, 'the other loan keeps the segment mapped');
  assert.ok(p.unloan(b));
  assert.is(b.length, 0, 'unmapped once its last loan is back');
  assert.is(p.outstanding, 0);
});

test.run();
