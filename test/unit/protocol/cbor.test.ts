// The wire's CBOR dialect (runtime/protocol/cbor.ts, PROTOCOL 7): heads, and every rule as both decoders keep it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HeadReader, MAX_DEPTH, Major, headArg, headBytes, headSize, putHead } from '../../../runtime/protocol/cbor.js';
import { decodeControl, encodeControl } from '../../../runtime/protocol/control.js';
import { decodeData, encodeData } from '../../../runtime/protocol/data.js';
import { QcopError } from '../../../runtime/protocol/errors.js';

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

/** The code of the QcopError `fn` throws ('none' when it returns). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.instance(e, QcopError);
    return (e as QcopError).code;
  }
  return 'none';
}

const control = (s: string) => () => decodeControl(hex(s));
const data = (s: string) => () => decodeData(hex(s));

// ---- heads

const SIZES: Array<[number, number, number]> = [
  // argument, head bytes, additional information
  [0, 1, 0], [23, 1, 23], [24, 2, 24], [255, 2, 24], [256, 3, 25], [65535, 3, 25], [65536, 5, 26],
  [2 ** 32 - 1, 5, 26], [2 ** 32, 9, 27], [2 ** 53 - 1, 9, 27],
];

test('heads of every size class: shortest form written, read back exactly, for every major type', () => {
  for (const major of [Major.Uint, Major.Nint, Major.Bytes, Major.Text, Major.Array, Major.Map, Major.Tag]) {
    for (const [n, size, info] of SIZES) {
      const buf = Buffer.alloc(12, 0xee);
      assert.is(putHead(buf, 1, major, n), 1 + size, `end of ${n}`);
      assert.is(headSize(n), size, `headSize(${n})`);
      assert.is(buf[1], (major << 5) | info, `first byte of ${n}`);
      assert.is(headBytes(buf[1]!), size, `headBytes of ${n}`);
      assert.is(headArg(buf, 1, size), n, `argument ${n}`);
      assert.is(buf[0], 0xee, 'nothing written before');
      assert.is(buf[1 + size], 0xee, 'nothing written after');
    }
  }
  assert.equal(encodeControl([2 ** 32 - 1, -(2 ** 32)]), hex('82 1affffffff 3affffffff'));
});

test('8-byte arguments are exact: a number up to 2^53 - 1, a bigint beyond', () => {
  assert.is(headArg(hex('1b 001fffffffffffff'), 0, 9), Number.MAX_SAFE_INTEGER);
  assert.is(headArg(hex('1b 0020000000000000'), 0, 9), 2n ** 53n);
  assert.is(headArg(hex('1b ffffffffffffffff'), 0, 9), 2n ** 64n - 1n);
  for (const info of [28, 29, 30, 31]) assert.is(headBytes(info), 0, `info ${info}`);
});

test('the head reader walks heads and refuses truncation and reserved forms with EPROTO', () => {
  const r = new HeadReader(hex('19 0100 9f ff'), 'test bytes');
  assert.is(r.head(), 256);
  assert.is(r.major, Major.Uint);
  assert.is(r.head(), -1, 'indefinite array');
  assert.ok(r.atBreak());
  r.end();
  assert.throws(() => new HeadReader(hex('1a 0001'), 'test bytes').head(), /^EPROTO: test bytes ends inside an item/);
  assert.throws(() => new HeadReader(hex('00 00'), 'test bytes').end(), /^EPROTO: test bytes has 2 bytes after its item/);
});

// ---- accepted by both decoders

test('non-shortest heads are accepted by both decoders', () => {
  assert.equal(decodeControl(hex('b9 0001 7a 00000001 61 19 0005')), { a: 5 });
  assert.equal(decodeData(hex('b9 0001 7a 00000001 61 19 0005')), { a: 5 });
  assert.equal(decodeControl(hex('a1 6161 1b 0000000000000005')), { a: 5 }, '8 bytes, within 2^53: the number');
  assert.equal(decodeData(hex('5a 00000002 0102')), Buffer.from([1, 2]), 'the 4-byte head of data written in place');
  assert.equal(decodeData(hex('5b 0000000000000002 0102')), Buffer.from([1, 2]));
});

test('indefinite-length arrays and maps are accepted by both decoders', () => {
  const bytes = hex('bf 6161 9f 01 02 ff 6162 bf ff ff');
  assert.equal(decodeControl(bytes), { a: [1, 2], b: {} });
  assert.equal(decodeData(bytes), { a: [1, 2], b: {} });
});

test('floats of 16, 32 and 64 bits, false, true, null are accepted by both decoders', () => {
  const bytes = hex('a6 6168 f93e00 6173 fa3fc00000 6164 fb400921fb54442d18 6166 f4 6174 f5 616e f6');
  const want = { h: 1.5, s: 1.5, d: Math.PI, f: false, t: true, n: null };
  assert.equal(decodeControl(bytes), want);
  assert.equal(decodeData(bytes), want);
});

// ---- refused by both decoders: EPROTO

const REFUSED_BY_BOTH: Array<[string, string]> = [
  ['an indefinite-length text string', '7f 6161 6162 ff'],
  ['an indefinite-length byte string', '5f 4101 4102 ff'],
  ['an empty indefinite-length text string', '7f ff'],
  ['additional information 28', '1c'],
  ['additional information 29', 'bd'],
  ['additional information 30', '7e'],
  ['an indefinite-length integer', '1f'],
  ['an indefinite-length negative integer', '3f'],
  ['an indefinite-length tag', 'df'],
  ['a stray break', 'ff'],
  ['a break in a definite array', '82 01 ff'],
  ['a map with a key and no value', 'bf 6161 ff'],
  ['a simple value below 20', 'f0'],
  ['a two-byte simple value', 'f8 20'],
  ['a truncated map', 'a1 6161'],
  ['a truncated head', '1a 0001'],
  ['a string longer than the payload', '7a ffffffff 61'],
  ['an unterminated indefinite-length array', '9f 01'],
  ['bytes after the item', 'a0 00'],
  ['two items', '01 02'],
];

for (const [what, bytes] of REFUSED_BY_BOTH) {
  test(`${what} is refused with EPROTO by both decoders`, () => {
    assert.is(codeOf(control(bytes)), 'EPROTO', 'control');
    assert.is(codeOf(data(bytes)), 'EPROTO', 'data');
  });
}

test('refusals say what is wrong', () => {
  assert.throws(control('a1 6161 7f 6161 ff'), /^EPROTO: control payload has an indefinite-length string/);
  assert.throws(control('a1 6161 1c'), /^EPROTO: control payload has a reserved head/);
  assert.throws(control('ff'), /^EPROTO: control payload has a break outside an indefinite-length item/);
  assert.throws(control('a1 6161 01 00'), /^EPROTO: control payload has 1 bytes after its item/);
  assert.throws(data('7f 6161 ff'), /^EPROTO: message data are not one CBOR item/);
});

// ---- integers: exact, or refused

test('data: 8-byte integers decode as exact bigints, shorter ones as numbers', () => {
  assert.is(decodeData(hex('1b 0000000000000005')), 5n);
  assert.is(decodeData(hex('1b 0020000000000001')), 2n ** 53n + 1n);
  assert.is(decodeData(hex('3b ffffffffffffffff')), -(2n ** 64n));
  assert.is(decodeData(hex('1a ffffffff')), 2 ** 32 - 1);
  assert.is(encodeData(2n ** 53n + 1n).toString('hex'), '1b0020000000000001');
});

test('control: integers within ±(2^53 - 1) decode to that number; beyond is refused with EPROTO, never narrowed', () => {
  assert.equal(decodeControl(hex('a1 6161 1b 001fffffffffffff')), { a: Number.MAX_SAFE_INTEGER });
  assert.equal(decodeControl(hex('a1 6161 3b 001ffffffffffffe')), { a: Number.MIN_SAFE_INTEGER });
  assert.equal(decodeControl(hex('a1 6161 3a ffffffff')), { a: -(2 ** 32) });
  for (const big of ['1b 0020000000000000', '1b ffffffffffffffff', '3b 001fffffffffffff', '3b ffffffffffffffff']) {
    assert.throws(control(`a1 6161 ${big}`), /^EPROTO: control payload has an integer beyond/, big);
  }
});

test('control: the encoder refuses a bigint (EINVAL) and writes numbers beyond 32 bits as float64, like cbor-x', () => {
  assert.is(codeOf(() => encodeControl({ n: 5n })), 'EINVAL');
  assert.is(codeOf(() => encodeControl({ n: 2n ** 60n })), 'EINVAL');
  for (const n of [2 ** 32, -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, 0.5, 1e300, Infinity]) {
    assert.equal(encodeControl(n), encodeData(n), String(n));
    assert.is(decodeControl(encodeControl({ n })).n, n, `${n} exact`);
  }
});

// ---- control shapes

test('control: byte strings, tags, undefined and keys that are not text are refused with EPROTO', () => {
  assert.throws(control('a1 6162 42 0102'), /^EPROTO: control payload has a byte string/);
  assert.throws(control('a1 6174 c1 1a5f5e1000'), /^EPROTO: control payload has a tag/);
  assert.throws(control('a1 6175 f7'), /^EPROTO: control payload has undefined/);
  assert.throws(control('a1 01 02'), /^EPROTO: control payload has a map key that is not text/);
  assert.throws(control('a1 6161 62 c328'), /^EPROTO: control payload has text that is not UTF-8/);
  assert.equal(decodeData(hex('a1 01 02')), { 1: 2 }, 'data: cbor-x makes such keys text');
});

test('control: a well-formed item that is not a map reads as no fields; the empty payload as {}', () => {
  assert.equal(decodeControl(hex('83 01 02 03')), {});
  assert.equal(decodeControl(hex('63 616263')), {});
  assert.equal(decodeControl(Buffer.alloc(0)), {});
});

test('control: the encoder refuses what the decoder would, with EINVAL; undefined members are left out', () => {
  assert.is(codeOf(() => encodeControl({ b: Buffer.from([1]) })), 'EINVAL');
  assert.is(codeOf(() => encodeControl({ b: new Uint16Array(1) })), 'EINVAL');
  assert.is(codeOf(() => encodeControl({ a: [1, undefined] })), 'EINVAL');
  assert.is(codeOf(() => encodeControl({ f: () => 1 })), 'EINVAL');
  assert.is(codeOf(() => encodeControl({ s: Symbol('x') })), 'EINVAL');
  assert.equal(encodeControl({ a: undefined, b: 1 }), hex('a1 6162 01'));
});

// ---- limits, checked before allocating

test(`nesting: ${MAX_DEPTH} levels pass, one more is refused (EPROTO reading, EINVAL writing)`, () => {
  const nest = (levels: number) => Buffer.concat([Buffer.alloc(levels - 1, 0x81), hex('00')]);
  let v: unknown = 0;
  for (let i = 1; i < MAX_DEPTH; i++) v = [v];
  assert.equal(encodeControl(v), nest(MAX_DEPTH));
  assert.is(codeOf(() => decodeControl(nest(MAX_DEPTH))), 'none');
  assert.is(codeOf(() => decodeControl(nest(MAX_DEPTH + 1))), 'EPROTO');
  assert.is(codeOf(() => encodeControl([v])), 'EINVAL');
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.is(codeOf(() => encodeControl(cycle)), 'EINVAL', 'a cycle is too deep, not a hang');
  assert.is(codeOf(() => decodeControl(Buffer.concat([Buffer.alloc(100000, 0x81), hex('00')]))), 'EPROTO');
  assert.is(codeOf(() => decodeData(Buffer.concat([Buffer.alloc(100000, 0x81), hex('00')]))), 'EPROTO', 'data: past the stack');
});

test('counts and lengths beyond the bytes left are refused before anything is built', () => {
  assert.throws(control('9b 0000000100000000 00'), /^EPROTO: control payload announces 4294967296 items in 1 bytes/);
  assert.throws(control('bb 001fffffffffffff'), /^EPROTO: control payload announces/);
  assert.throws(control('9b ffffffffffffffff'), /^EPROTO: control payload announces/);
  assert.throws(control('a2 6161 01'), /^EPROTO: control payload announces 2 items in 3 bytes/);
  assert.throws(control('7b ffffffffffffffff 61'), /^EPROTO: control payload has a length \(18446744073709551615\) beyond its end/);
});

// ---- what the broker and clients really exchange

const hostname = 'qcopd';
const EXCHANGED: Array<[string, Record<string, unknown>]> = [
  ['hello', { features: ['lost', 'call', 'watch', 'shm', 'noecho'] }],
  ['welcome', {
    broker: hostname, pid: 1769, version: 1, features: ['lost', 'call', 'watch', 'noecho', 'shm'], maxFrameBytes: 1048576,
    maxListeners: 4096, maxWatches: 1024, maxQueueBytes: 8388608, maxCallsInFlight: 1024, shmThreshold: 65536, maxPoolBytes: 134217728, shmGroup: 0,
  }],
  ['pool', { key: 'qcop-pool/123-abcd/1', max: 134217728 }],
  ['flush result', { messages: 4294967296, unrouted: 0 }],
  ['stats', {
    broker: hostname, pid: 1769, uptimeMs: 123456789012, clients: 2, channels: 3, routed: 2 ** 40, delivered: 7,
    dropped: { unrouted: 1, slowConsumer: 0, shm: 0, total: 1 },
    calls: { started: 0, pending: 0, lateReplies: 0 },
    descriptors: { limit: null, open: 12, refused: 0, acceptErrors: 0 },
    queues: {
      policy: 'drop', limitBytes: 8388608, totalBytes: 0, maxBytes: 0,
      connections: [{ id: 1, name: 'listener', pid: 4242, uid: null, transport: 'unix', listeners: 1, queuedBytes: 0, stuck: false, paused: true }],
    },
    memory: { rss: 5.5e9, countedBytes: 0 },
    carriers: { tcp: { links: [{ url: 'tcp://h:1', export: ['a/*'], import: [], lastError: 'ünïcødé ✓' }] } },
  }],
];

for (const [what, v] of EXCHANGED) {
  test(`a ${what} payload round-trips, and cbor-x reads what we write`, () => {
    const bytes = encodeControl(v);
    assert.equal(decodeControl(bytes), v);
    assert.equal(decodeData(bytes), v);
    assert.equal(decodeControl(encodeData(v)), v, 'and we read what cbor-x writes');
  });
}

test('a hello is written in shortest form, byte for byte', () => {
  assert.equal(encodeControl({ features: ['lost', 'call', 'watch'] }), hex('a1 68 6665617475726573 83 646c6f7374 6463616c6c 657761746368'));
});

test.run();
