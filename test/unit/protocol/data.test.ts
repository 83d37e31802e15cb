// Message data as CBOR (SPEC §1, PROTOCOL 7): what goes in comes out, and no data is the empty payload.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeData, encodeData } from '../../../runtime/protocol/data.js';
import { decodeControl, encodeControl } from '../../../runtime/protocol/control.js';

function roundTrip(value: unknown): unknown {
  return decodeData(encodeData(value));
}

const SAME: Array<[string, unknown]> = [
  ['zero', 0],
  ['a small integer', 7],
  ['a negative integer', -42],
  ['the largest u32', 0xffffffff],
  ['the largest safe integer', Number.MAX_SAFE_INTEGER],
  ['the smallest safe integer', Number.MIN_SAFE_INTEGER],
  ['a fraction', 1.5],
  ['a double that needs 64 bits', 0.1],
  ['a tiny double', 5e-324],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['true', true],
  ['false', false],
  ['null', null],
  ['an empty string', ''],
  ['an ASCII string', 'hello'],
  ['a UTF-8 string', 'größe 😀 日本'],
  ['an empty array', []],
  ['a nested array', [1, [2, [3, 'x']], null]],
  ['an empty map', {}],
  ['a map', { a: 1, b: 'two', c: [3] }],
  ['a nested map', { outer: { inner: { deep: true } }, list: [{ x: 1 }] }],
  ['a map with undefined inside', { a: undefined }],
  ['an array with undefined inside', [1, undefined, 3]],
  ['a bigint within 64 bits', 5n],
  ['a large positive bigint', 2n ** 64n],
  ['a large negative bigint', -(2n ** 70n)],
  ['a bigint at the u64 limit', 2n ** 64n - 1n],
];

for (const [what, value] of SAME) {
  test(`${what} round-trips`, () => {
    assert.equal(roundTrip(value), value);
  });
}

test('NaN round-trips', () => {
  assert.ok(Number.isNaN(roundTrip(NaN)));
});

// CBOR has one integer zero and cbor-x writes -0 as it: a documented limit (docs/DECISIONS.md).
test('-0 arrives as 0 (documented limit)', () => {
  assert.ok(Object.is(roundTrip(-0), 0));
});

test('-0 inside an array arrives as 0 (documented limit)', () => {
  const back = roundTrip([-0]) as number[];
  assert.ok(Object.is(back[0], 0));
});

test('a Buffer round-trips as bytes', () => {
  const back = roundTrip(Buffer.from([0, 1, 2, 255]));
  assert.ok(back instanceof Uint8Array);
  assert.is(Buffer.from(back as Uint8Array).toString('hex'), '000102ff');
});

test('a plain Uint8Array round-trips as the same bytes', () => {
  const back = roundTrip(new Uint8Array([9, 8, 7]));
  assert.ok(back instanceof Uint8Array);
  assert.equal([...(back as Uint8Array)], [9, 8, 7]);
});

test('bytes travel as an untagged CBOR byte string', () => {
  assert.is(encodeData(Buffer.from([1, 2, 3])).toString('hex'), '43010203');
});

test('a Date round-trips to the millisecond', () => {
  const d = new Date(1700000000123);
  const back = roundTrip(d);
  assert.ok(back instanceof Date);
  assert.is((back as Date).getTime(), d.getTime());
});

test('a Map with non-string keys round-trips as a Map', () => {
  const m = new Map<unknown, unknown>([[1, 'one'], ['two', 2], [true, null]]);
  const back = roundTrip(m);
  assert.ok(back instanceof Map);
  assert.equal([...(back as Map<unknown, unknown>)], [...m]);
});

test('a bigint of any size comes back as a bigint, not a number', () => {
  for (const v of [0n, 1n, -1n, 2n ** 53n + 1n, 2n ** 100n]) assert.is(typeof roundTrip(v), 'bigint', String(v));
});

test('undefined is the empty payload, and the empty payload is undefined', () => {
  assert.is(encodeData(undefined).length, 0);
  assert.is(decodeData(Buffer.alloc(0)), undefined);
});

test('null is not the empty payload', () => {
  assert.is(encodeData(null).toString('hex'), 'f6');
});

test('well-known encodings a C client can read', () => {
  const cases: Array<[unknown, string]> = [
    [42, '182a'],
    [-1, '20'],
    ['a', '6161'],
    [[1, 2], '820102'],
    [true, 'f5'],
    [1.5, 'fb3ff8000000000000'],
  ];
  for (const [value, hex] of cases) assert.is(encodeData(value).toString('hex'), hex, JSON.stringify(value));
});

test('decoded bytes point into the payload unless a copy is asked for', () => {
  const payload = encodeData(Buffer.from('abc'));
  const view = decodeData(payload) as Uint8Array;
  const copy = decodeData(payload, true) as Uint8Array;
  payload[payload.length - 1] = 0x7a;
  assert.is(Buffer.from(view).toString(), 'abz');
  assert.is(Buffer.from(copy).toString(), 'abc');
});

const MALFORMED: Array<[string, string]> = [
  ['two items', '0000'],
  ['a truncated map', 'a1'],
  ['a stray break', 'ff'],
  ['a reserved additional-information value', '1c'],
  ['an array announcing 2^32 items', '9b0000000100000000'],
  ['a byte string longer than the payload', '5affffffff'],
];

for (const [what, hex] of MALFORMED) {
  test(`a payload with ${what} is refused by the decoder`, () => {
    assert.throws(() => decodeData(Buffer.from(hex, 'hex')));
  });
}

test('decoding one payload does not change how a later payload decodes', () => {
  // Receivers decode payloads from many senders: one sender's bytes must not leave state behind.
  const later = Buffer.from('d9e000820506', 'hex'); // tag 57344 around [5, 6]
  const before = JSON.stringify(decodeData(later));
  // A cbor-x record definition (tag 0xdfff) naming structure 0xe000 with keys a, b.
  try {
    decodeData(Buffer.from('d9dfff8419e00082616161620102', 'hex'));
  } catch {
    // refusing it is fine too
  }
  assert.is(JSON.stringify(decodeData(later)), before);
});

test('control payloads are CBOR maps; an empty or non-map payload reads as {}', () => {
  const body = { messages: 3, unrouted: 1 };
  assert.equal(decodeControl(encodeControl(body)), body);
  assert.equal(decodeControl(Buffer.alloc(0)), {});
  assert.equal(decodeControl(encodeData(5)), {});
});

test('the decoder\'s fast paths return what cbor-x returns (byte strings, small integers, simple values)', async () => {
  const { Decoder } = await import('cbor-x');
  const reference = new Decoder({ useRecords: false, mapsAsObjects: true });
  const values: unknown[] = [0, 1, 23, -1, -24, 24, -25, true, false, null, Buffer.alloc(0)];
  for (const n of [1, 23, 24, 255, 256, 65535, 65536, 70000]) values.push(Buffer.alloc(n, n & 0xff));
  for (const v of values) {
    const bytes = encodeData(v);
    const got = decodeData(bytes);
    assert.equal(got, reference.decode(bytes), `${bytes.subarray(0, 6).toString('hex')}`);
    if (Buffer.isBuffer(v)) {
      assert.ok(Buffer.isBuffer(got), 'a Buffer');
      assert.is((got as Buffer).buffer, bytes.buffer, 'zero copy');
      assert.is.not((decodeData(bytes, true) as Buffer).buffer, bytes.buffer, 'copied on request');
    }
  }
  assert.is(decodeData(Buffer.from([0xf7])), undefined);
  // A byte string followed by more bytes is not one item: the full decoder decides.
  assert.throws(() => decodeData(Buffer.from([0x41, 0x01, 0x02])));
});

test('data that cannot be encoded (a function, a symbol) are EINVAL, before anything is sent', () => {
  for (const bad of [() => 1, Symbol('s'), { f: () => 2 }]) {
    assert.throws(() => encodeData(bad), (e: { code?: string }) => e.code === 'EINVAL');
  }
});

test.run();
