// JSON forms of message data for the CLI (SPEC §4): plain JSON where exact, else $bytes/$bigint/$date/$cbor.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromJsonData, parseDataArgument, toJsonData } from '../../../runtime/cli/json-data.js';
import { QcopError } from '../../../runtime/protocol/errors.js';

/** Through JSON text and back, as between `qcop listen` and `qcop send`. */
function viaText(value: unknown): { text: string; back: unknown } {
  const text = JSON.stringify(toJsonData(value));
  return { text, back: parseDataArgument(text) };
}

const PLAIN: Array<[string, unknown, string]> = [
  ['an integer', 42, '42'],
  ['a negative fraction', -1.25, '-1.25'],
  ['a string', 'héllo', '"héllo"'],
  ['true', true, 'true'],
  ['null', null, 'null'],
  ['an array', [1, 'a', null], '[1,"a",null]'],
  ['a map', { a: 1, b: { c: [true] } }, '{"a":1,"b":{"c":[true]}}'],
  ['an object with two keys, one of them $bytes', { $bytes: 'AA==', other: 1 }, '{"$bytes":"AA==","other":1}'],
  ['an object with a $-key that is not a form', { $other: 'x' }, '{"$other":"x"}'],
];

for (const [what, value, json] of PLAIN) {
  test(`${what} prints as plain JSON and reads back equal`, () => {
    const { text, back } = viaText(value);
    assert.is(text, json);
    assert.equal(back, value);
  });
}

test('bytes print as $bytes (base64) and read back as a Buffer', () => {
  const { text, back } = viaText(Buffer.from([0, 1, 254, 255]));
  assert.is(text, '{"$bytes":"AAH+/w=="}');
  assert.ok(Buffer.isBuffer(back));
  assert.is((back as Buffer).toString('hex'), '0001feff');
});

test('a plain Uint8Array prints as $bytes too', () => {
  assert.equal(toJsonData(new Uint8Array([1, 2])), { $bytes: 'AQI=' });
});

test('a Uint8Array view prints only its own bytes', () => {
  const big = Buffer.from([9, 9, 1, 2, 9]);
  assert.equal(toJsonData(big.subarray(2, 4)), { $bytes: 'AQI=' });
});

test('empty bytes print as $bytes with an empty string and read back empty', () => {
  const { text, back } = viaText(Buffer.alloc(0));
  assert.is(text, '{"$bytes":""}');
  assert.is((back as Buffer).length, 0);
});

test('a bigint prints as $bigint (decimal) and reads back as a bigint', () => {
  for (const v of [0n, -5n, 2n ** 64n, -(2n ** 100n)]) {
    const { text, back } = viaText(v);
    assert.is(text, `{"$bigint":"${v}"}`);
    assert.is(back, v);
  }
});

test('a Date prints as $date (ISO 8601) and reads back as the same instant', () => {
  const d = new Date('2024-02-29T12:34:56.789Z');
  const { text, back } = viaText(d);
  assert.is(text, '{"$date":"2024-02-29T12:34:56.789Z"}');
  assert.ok(back instanceof Date);
  assert.is((back as Date).getTime(), d.getTime());
});

const CBOR_FORMS: Array<[string, unknown, (back: unknown) => boolean]> = [
  ['NaN', NaN, (b) => Number.isNaN(b)],
  ['Infinity', Infinity, (b) => b === Infinity],
  ['-Infinity', -Infinity, (b) => b === -Infinity],
  ['-0', -0, (b) => Object.is(b, -0)],
  ['an invalid Date', new Date(NaN), (b) => b instanceof Date && Number.isNaN(b.getTime())],
  ['a Map with non-string keys', new Map<unknown, unknown>([[1, 'a'], [true, [2]]]), (b) => b instanceof Map && b.get(1) === 'a' && (b.get(true) as number[])[0] === 2],
  ['a Map with string keys', new Map([['k', 1]]), (b) => b instanceof Map && b.get('k') === 1],
  ['an array with a hole of undefined', [1, undefined], (b) => Array.isArray(b) && b.length === 2 && b[1] === undefined && 1 in b],
  ['an object with an undefined value', { a: undefined }, (b) => typeof b === 'object' && b !== null && 'a' in b && (b as { a?: unknown }).a === undefined],
  ['a Uint16Array', new Uint16Array([1, 65535]), (b) => b instanceof Uint16Array && b[1] === 65535],
];

for (const [what, value, same] of CBOR_FORMS) {
  test(`${what} goes as $cbor and comes back equal`, () => {
    const json = toJsonData(value) as Record<string, unknown>;
    assert.equal(Object.keys(json), ['$cbor']);
    const { back } = viaText(value);
    assert.ok(same(back), `got ${String(back)}`);
  });
}

test('no data (undefined) has a form that reads back as undefined', () => {
  const { back } = viaText(undefined);
  assert.is(back, undefined);
});

const LOOKALIKES: Array<[string, Record<string, unknown>]> = [
  ['$bytes', { $bytes: 'AAEC' }],
  ['$bigint', { $bigint: '12' }],
  ['$date', { $date: '2020-01-01T00:00:00.000Z' }],
  ['$cbor', { $cbor: 'AA==' }],
  ['$bytes with a non-string value', { $bytes: 5 }],
];

for (const [form, obj] of LOOKALIKES) {
  test(`a real object that looks like ${form} goes as $cbor and comes back equal`, () => {
    const json = toJsonData(obj) as Record<string, unknown>;
    assert.equal(Object.keys(json), ['$cbor']);
    const { back } = viaText(obj);
    assert.equal(back, obj);
  });
}

test('a look-alike nested deep inside a map is carried exactly', () => {
  const value = { list: [{ $date: 'not a date' }], n: 1 };
  assert.equal(viaText(value).back, value);
});

test('nested special values keep their forms inside plain JSON', () => {
  const value = { when: new Date(0), raw: Buffer.from('hi'), big: 10n ** 20n, list: [NaN, { deep: 7n }] };
  const json = toJsonData(value) as Record<string, unknown>;
  assert.equal(json.when, { $date: '1970-01-01T00:00:00.000Z' });
  assert.equal(json.raw, { $bytes: 'aGk=' });
  assert.equal(json.big, { $bigint: '100000000000000000000' });
  const back = viaText(value).back as typeof value;
  assert.is(back.when.getTime(), 0);
  assert.is(back.raw.toString(), 'hi');
  assert.is(back.big, 10n ** 20n);
  assert.ok(Number.isNaN(back.list[0]));
  assert.is((back.list[1] as { deep: bigint }).deep, 7n);
});

test('the forms are accepted as input in nested positions', () => {
  const back = fromJsonData({ a: [{ $bytes: 'AQ==' }, { $bigint: '-3' }], d: { $date: '2000-01-01T00:00:00Z' } }) as {
    a: [Buffer, bigint];
    d: Date;
  };
  assert.is(back.a[0].toString('hex'), '01');
  assert.is(back.a[1], -3n);
  assert.is(back.d.toISOString(), '2000-01-01T00:00:00.000Z');
});

const MALFORMED: Array<[string, string]> = [
  ['DATA that is not JSON', '{nope'],
  ['$bytes with a number', '{"$bytes":5}'],
  ['$bytes with characters outside base64', '{"$bytes":"a*b"}'],
  ['$bytes with base64url characters', '{"$bytes":"-_-_"}'],
  ['$bytes with a length no base64 can have', '{"$bytes":"A"}'],
  ['$bigint with a fraction', '{"$bigint":"1.5"}'],
  ['$bigint with an exponent', '{"$bigint":"1e3"}'],
  ['$bigint that is empty', '{"$bigint":""}'],
  ['$bigint with spaces', '{"$bigint":" 1"}'],
  ['$bigint with a number', '{"$bigint":12}'],
  ['$date that is not a date', '{"$date":"yesterday"}'],
  ['$date that is not ISO 8601', '{"$date":"March 7, 2020"}'],
  ['$date with a number', '{"$date":0}'],
  ['$cbor that is empty', '{"$cbor":""}'],
  ['$cbor that is not base64', '{"$cbor":"%%"}'],
  ['$cbor holding two items', '{"$cbor":"AAA="}'],
  ['$cbor holding a truncated item', '{"$cbor":"gQ=="}'],
  ['$cbor holding a stray break', '{"$cbor":"/w=="}'],
  ['a malformed form nested in an array', '[1,{"$bigint":"x"}]'],
  ['a malformed form nested in a map', '{"a":{"$date":"never"}}'],
];

for (const [what, text] of MALFORMED) {
  test(`${what} is refused with EINVAL`, () => {
    try {
      const value = parseDataArgument(text);
      assert.unreachable(`accepted as ${String(value)}`);
    } catch (err) {
      if ((err as Error).name === 'Assertion') throw err;
      assert.instance(err, QcopError);
      assert.is((err as QcopError).code, 'EINVAL');
    }
  });
}

test.run();
