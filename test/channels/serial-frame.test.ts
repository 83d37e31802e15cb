// Serial framing, byte by byte: COBS, CRC-32, records, resynchronisation after garbage (docs/SERIAL.md).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cobsDecode, cobsEncode } from '../../channels/serial/cobs.js';
import { crc32 } from '../../runtime/protocol/crc32.js';
import { FrameReader, STREAM_END, STREAM_OPEN, Type, encodeHello, encodeMsg, encodeStream, type Record_ } from '../../channels/serial/frame.js';
import { SerialLine, type SerialStream } from '../../channels/serial/stream.js';
import { compileAll, matchesAny } from '../../channels/shared/wildcard.js';

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

test('COBS: the published examples', () => {
  const cases: Array<[string, string]> = [
    ['', '01'],
    ['00', '01 01'],
    ['00 00', '01 01 01'],
    ['11 22 00 33', '03 11 22 02 33'],
    ['11 22 33 44', '05 11 22 33 44'],
    ['11 00 00 00', '02 11 01 01 01'],
  ];
  for (const [raw, enc] of cases) {
    assert.equal(cobsEncode(hex(raw)), hex(enc), raw);
    assert.equal(cobsDecode(hex(enc)), hex(raw), enc);
  }
  for (const n of [253, 254, 255, 256, 600]) {
    const data = Buffer.alloc(n, 7);
    data[100 % n] = 0;
    const enc = cobsEncode(data);
    assert.not.ok(enc.includes(0), 'no zero inside');
    assert.equal(cobsDecode(enc), data, `length ${n}`);
  }
  assert.is(cobsDecode(hex('05 11 22')), null, 'block runs past the end');
  assert.is(cobsDecode(hex('02 00')), null, 'zero inside');
});

test('CRC-32 check value', () => {
  assert.is(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('records round-trip, split anywhere', () => {
  const wire = Buffer.concat([encodeMsg('sensors/imu/0', 'sample(QVariant)', hex('83 01 02 03')), encodeHello(1, 4096, 'board-a'), encodeMsg('a/b', 'm()', Buffer.alloc(0))]);
  for (let split = 0; split <= wire.length; split += 3) {
    const r = new FrameReader();
    const got: Record_[] = [];
    r.push(wire.subarray(0, split), (x) => got.push(x));
    r.push(wire.subarray(split), (x) => got.push(x));
    assert.equal(got, [
      { type: Type.Msg, channel: 'sensors/imu/0', message: 'sample(QVariant)', data: hex('83 01 02 03') },
      { type: Type.Hello, flags: 1, maxRecord: 4096, name: 'board-a' },
      { type: Type.Msg, channel: 'a/b', message: 'm()', data: Buffer.alloc(0) },
    ]);
    assert.equal(r.counts, { records: 3, crcErrors: 0, malformed: 0, oversize: 0 });
  }
});

test('garbage: counted and dropped, the reader resynchronises at the next delimiter', () => {
  const good = encodeMsg('a/b', 'm()', hex('01'));
  const flipped = Buffer.from(good);
  flipped[5] ^= 0x10; // still valid COBS, wrong CRC
  const r = new FrameReader(256);
  const got: Record_[] = [];
  r.push(Buffer.concat([hex('13 37 ff'), good, flipped, good, Buffer.alloc(600, 0x41), hex('00'), good, hex('00 00')]), (x) => got.push(x));
  assert.is(got.length, 3);
  assert.is(r.counts.crcErrors, 1);
  assert.is(r.counts.oversize, 1);
  assert.ok(r.counts.malformed + r.counts.crcErrors >= 2, 'the leading garbage is dropped');
});

test('link filters: patterns match as Qt wildcards, plain names only themselves (even with ? or [)', () => {
  const filters = compileAll(['QPE/*', 'a?b', 'lit[eral']);
  const cases: Array<[string, boolean]> = [['QPE/Application/x', true], ['a?b', true], ['axb', false], ['lit[eral', true], ['literal', false], ['other', false]];
  for (const [name, expected] of cases) assert.is(matchesAny(filters, name), expected, name);
});

test('client line: a broker reset that predates our OPEN is stale; after the broker has spoken on ours it ends it', () => {
  const wire: Buffer[] = [];
  const line = new SerialLine({ write: (b: Buffer) => (wire.push(b), true), once: () => undefined, off: () => undefined } as never);
  const s = line.open();
  const got: Buffer[] = [];
  let ended = false;
  s.on('data', (d: Buffer) => got.push(d));
  s.on('end', () => (ended = true));
  line.input(encodeStream(STREAM_END, 0, Buffer.alloc(0)));
  assert.is(line.current, s, 'the reset before any answer left the new connection alone');
  assert.is(line.stale, 1);
  line.input(encodeStream(0, s.conn, Buffer.from('welcome')));
  line.input(encodeStream(STREAM_END, 0, Buffer.alloc(0)));
  assert.is(line.current, null, 'a reset after the broker answered ends the connection');
  return new Promise<void>((resolve) => setImmediate(() => {
    assert.equal(Buffer.concat(got).toString(), 'welcome');
    assert.ok(ended || s.readableEnded || s.destroyed, 'the stream ended');
    resolve();
  }));
});

test('broker line: a connection held back (paused) past maxHeldBytes is closed and counted, never grown without bound', () => {
  const overflowed: unknown[] = [];
  let accepted: SerialStream | null = null;
  const sink = { write: () => true, once: () => undefined, off: () => undefined } as never;
  const line = new SerialLine(sink, (s) => (accepted = s), 8192, (s) => overflowed.push(s));
  line.input(encodeStream(STREAM_OPEN, 7, Buffer.alloc(0)));
  const s = accepted!;
  assert.ok(s, 'the OPEN made a connection');
  s.on('error', () => {}); // the broker's Connection listens for it
  s.pause(); // what the broker does to a sender filling a slow receiver's queue
  line.input(encodeStream(0, 7, Buffer.alloc(4000, 1)));
  line.input(encodeStream(0, 7, Buffer.alloc(4000, 2)));
  assert.is(line.current, s, 'within the bound it stays');
  assert.is(s.readableLength, 8000);
  line.input(encodeStream(0, 7, Buffer.alloc(4000, 3)));
  assert.ok(s.destroyed, 'past the bound the connection is closed');
  assert.is(line.current, null);
  assert.is(line.overflows, 1);
  assert.equal(overflowed, [s]);
  line.input(encodeStream(0, 7, Buffer.alloc(10)));
  assert.is(line.stale, 1, 'what follows on that connection is stale, not buffered');
});

test.run();
