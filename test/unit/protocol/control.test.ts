// The control-payload codec (runtime/protocol/control.ts): interoperable with cbor-x both ways, strict on bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeControl, encodeControl } from '../../../runtime/protocol/control.js';
import { decodeData, encodeData } from '../../../runtime/protocol/data.js';

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');
const SAMPLES: Array<Record<string, unknown>> = [
  { features: ['lost', 'call', 'watch', 'shm'] },
  { maxFrameBytes: 1048576, shmThreshold: 65536, maxPoolBytes: 134217728, shmGroup: 0, features: [] },
  { messages: 0, unrouted: 4294967296 },
  { key: 'qcop-pool/123-abcd/1', max: 2 ** 53 - 1 },
  {
    ints: [0, 1, 23, 24, 255, 256, 65535, 65536, 4294967295, -1, -24, -25, -256, -257, -65537, -(2 ** 53 - 1)],
    floats: [0.5, -1.25, 1e300, 3.141592653589793],
    text: ['', 'ünïcødé ✓', 'x'.repeat(300)],
    nested: { a: { b: { c: [null, true, false, [1, [2, [3]]]] } } },
    empty: {},
  },
];

test('what we encode, cbor-x decodes to the same value; what cbor-x encodes, we decode', () => {
  for (const v of SAMPLES) {
    assert.equal(decodeData(encodeControl(v)), v);
    assert.equal(decodeControl(encodeControl(v)), v);
    assert.equal(decodeControl(encodeData(v)), v);
  }
});

test('shortest heads, float64 for non-integers, undefined members left out', () => {
  assert.equal(encodeControl({ a: 1 }), hex('a1 6161 01'));
  assert.equal(encodeControl({ n: 65536 }), hex('a1 616e 1a00010000'));
  assert.equal(encodeControl({ f: 0.5 }), hex('a1 6166 fb3fe0000000000000'));
  assert.equal(encodeControl({ a: undefined, b: -1 }), hex('a1 6162 20'));
  assert.equal(encodeControl(undefined).length, 0);
});

test('indefinite arrays and maps, half and single floats decode; what control payloads never carry is refused (cbor.ts)', () => {
  assert.equal(decodeControl(hex('bf 6161 9f 01 02 ff 6162 62 6162 ff')), { a: [1, 2], b: 'ab' });
  assert.equal(decodeControl(hex('a2 6168 f93c00 6173 fa3fc00000')), { h: 1, s: 1.5 });
  assert.equal(decodeControl(hex('a1 616e f6')), { n: null });
  assert.throws(() => decodeControl(hex('a1 6162 7f 6161 6162 ff')), /^EPROTO: .*indefinite-length string/);
  assert.throws(() => decodeControl(hex('a1 6174 c1 1a5f5e1000')), /^EPROTO: .*tag/);
  assert.throws(() => decodeControl(hex('a1 6175 f7')), /^EPROTO: .*undefined/);
  assert.throws(() => decodeControl(hex('a1 6162 42 0102')), /^EPROTO: .*byte string/);
  assert.equal(decodeControl(Buffer.alloc(0)), {});
  assert.equal(decodeControl(hex('83 01 02 03')), {}, 'not a map: no fields');
});

test('bad input: a clear EPROTO, never a crash or a polluted prototype', () => {
  assert.throws(() => decodeControl(hex('a1 6161')), /^EPROTO: /, 'ends inside an item');
  assert.throws(() => decodeControl(hex('a1 6161 01 00')), /^EPROTO: /, 'bytes after the item');
  assert.throws(() => decodeControl(hex('a1 6161 1c')), /^EPROTO: /, 'reserved head');
  assert.throws(() => decodeControl(hex('a1 6161 62 c328')), /^EPROTO: /, 'text that is not UTF-8');
  assert.throws(() => decodeControl(hex('ff')), /^EPROTO: /, 'a stray break');
  assert.throws(() => decodeControl(hex('a1 6161 5f 6161 ff')), /^EPROTO: /, 'a text chunk in a byte string');
  assert.throws(() => decodeControl(Buffer.concat([Buffer.alloc(10000, 0x81), hex('00')])), /^EPROTO: /, 'nesting bomb');
  assert.throws(() => decodeControl(hex('a1 6161 5b ffffffffffffffff')), /^EPROTO: /, 'a length beyond the payload');
  const v = decodeControl(hex('a1 69 5f5f70726f746f5f5f a1 6178 01'));
  assert.equal(Object.keys(v), ['__proto__']);
  assert.is(({} as Record<string, unknown>).x, undefined, 'Object.prototype untouched');
  assert.is(Object.getPrototypeOf(v), Object.prototype);
  assert.throws(() => encodeControl({ f: () => 1 }), /^EINVAL: /);
});

test.run();
