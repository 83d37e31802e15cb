// encodeFrame and the field views: the 16-byte little-endian header and the fields after it (PROTOCOL 1.2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HEADER_SIZE, Off } from '../../../runtime/protocol/constants.js';
import { headSize } from '../../../runtime/protocol/cbor.js';
import { channelBytes, encodeFrame, messageBytes, payloadLength, payloadOf, type Frame } from '../../../runtime/protocol/frame.js';
import { FrameParser } from '../../../runtime/protocol/parser.js';

function parseOne(buf: Buffer): Frame {
  const frames: Frame[] = [];
  const err = new FrameParser(1 << 30).push(buf, (f) => frames.push(f));
  assert.is(err, null);
  assert.is(frames.length, 1);
  return frames[0]!;
}

const CASES: Array<{ what: string; kind: number; flags: number; id: number; aux: number; channel: string; message: string; payload: Buffer }> = [
  { what: 'all zero fields', kind: 0x05, flags: 0, id: 0, aux: 0, channel: '', message: '', payload: Buffer.alloc(0) },
  { what: 'maximum ids', kind: 0x04, flags: 0xff, id: 0xffffffff, aux: 0xffffffff, channel: 'a', message: 'b', payload: Buffer.alloc(0) },
  { what: 'ids with the top bit set', kind: 0x42, flags: 0x02, id: 0x80000001, aux: 0x80000000, channel: 'QPE/System', message: 'setVolume(int)', payload: Buffer.from([0x07]) },
  { what: 'multi-byte UTF-8 names', kind: 0x04, flags: 0, id: 1, aux: 2, channel: 'café/größe/日本', message: 'émettre(😀)', payload: Buffer.from('€') },
  { what: '255-byte names', kind: 0x02, flags: 0, id: 3, aux: 4, channel: 'x'.repeat(255), message: 'é'.repeat(127) + 'e', payload: Buffer.alloc(1000, 0xab) },
  { what: 'a message without a channel (welcome, error)', kind: 0x44, flags: 0, id: 9, aux: 0x02, channel: '', message: 'EINVAL', payload: Buffer.from('bad name') },
];

for (const c of CASES) {
  test(`header fields round-trip: ${c.what}`, () => {
    const buf = encodeFrame(c.kind, c.flags, c.id, c.aux, c.channel, c.message, c.payload);
    const f = parseOne(buf);
    assert.equal(
      [f.kind, f.flags, f.id, f.aux, channelBytes(f).toString('utf8'), messageBytes(f).toString('utf8'), payloadOf(f).toString('hex')],
      [c.kind, c.flags, c.id, c.aux, c.channel, c.message, c.payload.toString('hex')],
    );
    assert.is(payloadLength(f), c.payload.length);
  });

  test(`the header is laid out little-endian at fixed offsets: ${c.what}`, () => {
    const buf = encodeFrame(c.kind, c.flags, c.id, c.aux, c.channel, c.message, c.payload);
    const channelLen = Buffer.byteLength(c.channel);
    const messageLen = Buffer.byteLength(c.message);
    assert.is(buf.length, HEADER_SIZE + channelLen + messageLen + c.payload.length);
    assert.is(buf.readUInt32LE(0), buf.length, 'length counts the whole frame, itself included');
    assert.is(buf[4], c.kind);
    assert.is(buf[5], c.flags);
    assert.is(buf[6], channelLen);
    assert.is(buf[7], messageLen);
    assert.is(buf.readUInt32LE(8), c.id);
    assert.is(buf.readUInt32LE(12), c.aux);
    assert.is(buf.toString('utf8', 16, 16 + channelLen), c.channel);
    assert.is(buf.toString('utf8', 16 + channelLen, 16 + channelLen + messageLen), c.message);
  });
}

test('the offsets constant matches the documented layout', () => {
  assert.equal([Off.Length, Off.Kind, Off.Flags, Off.ChannelLen, Off.MessageLen, Off.Id, Off.Aux, HEADER_SIZE], [0, 4, 5, 6, 7, 8, 12, 16]);
});

test('negative numbers for id and aux are written as their u32 two-complement', () => {
  const f = parseOne(encodeFrame(0x04, 0, -1, -2, 'a', 'b'));
  assert.equal([f.id, f.aux], [0xffffffff, 0xfffffffe]);
});

test('name lengths count UTF-8 bytes, not UTF-16 units', () => {
  const buf = encodeFrame(0x04, 0, 1, 0, 'é', '😀');
  assert.equal([buf[6], buf[7]], [2, 4]);
});

test('the payload views share memory with the frame', () => {
  const buf = encodeFrame(0x04, 0, 1, 0, 'a', 'b', Buffer.from('xyz'));
  const f = parseOne(buf);
  payloadOf(f)[0] = 0x41;
  assert.is(buf.toString('latin1', 18), 'Ayz');
});

test('a Uint8Array payload is accepted like a Buffer', () => {
  const f = parseOne(encodeFrame(0x04, 0, 1, 0, 'a', 'b', new Uint8Array([1, 2, 3])));
  assert.is(payloadOf(f).toString('hex'), '010203');
});

test('a byte string written straight into the frame is exactly what the data encoder produces', async () => {
  const { encodeData } = await import('../../../runtime/protocol/data.js');
  for (const n of [0, 1, 23, 24, 255, 256, 65535, 65536, 70000]) {
    const data = Buffer.alloc(n, 7);
    const f = parseOne(encodeFrame(0x04, 0, 1, 0, 'ch', 'msg()', data, true));
    assert.equal(payloadOf(f), encodeData(data), `${n} bytes`);
    assert.is(payloadOf(f).length, headSize(n) + n);
  }
});

test('names given as their UTF-8 bytes (the sender\'s cache) make the same frame as strings', () => {
  for (const [ch, msg] of [['QPE/System', 'setVolume(int)'], ['ünï/cødé', 'm()'], ['', '']]) {
    const a = encodeFrame(0x04, 1, 7, 9, ch!, msg!, Buffer.from([1, 2, 3]));
    const b = encodeFrame(0x04, 1, 7, 9, Buffer.from(ch!, 'utf8'), Buffer.from(msg!, 'utf8'), Buffer.from([1, 2, 3]));
    assert.equal(b, a, `${ch} ${msg}`);
  }
  const big = encodeFrame(0x04, 0, 0xffffffff, 0x80000001, 'a', 'b');
  assert.equal([big.readUInt32LE(Off.Length), big.readUInt32LE(Off.Id), big.readUInt32LE(Off.Aux)], [HEADER_SIZE + 2, 0xffffffff, 0x80000001]);
});

test.run();
