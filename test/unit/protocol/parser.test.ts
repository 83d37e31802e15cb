// FrameParser: a pure byte stream splitter; every length checked before anything is allocated (PROTOCOL 1, 5.1).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HEADER_SIZE } from '../../../runtime/protocol/constants.js';
import { encodeFrame, channelBytes, messageBytes, payloadOf, type Frame } from '../../../runtime/protocol/frame.js';
import { FrameParser, type FrameHead, type ParseError } from '../../../runtime/protocol/parser.js';

const MAX = 1 << 20;

interface Seen {
  kind: number;
  flags: number;
  id: number;
  aux: number;
  channel: string;
  message: string;
  payload: string;
}

function seen(f: Frame): Seen {
  return {
    kind: f.kind,
    flags: f.flags,
    id: f.id,
    aux: f.aux,
    channel: channelBytes(f).toString('utf8'),
    message: messageBytes(f).toString('utf8'),
    payload: payloadOf(f).toString('hex'),
  };
}

/** Feeds `chunks` in order; returns the frames seen (copied out) and the first error. */
function feed(parser: FrameParser, chunks: Buffer[]): { frames: Seen[]; errors: ParseError[] } {
  const frames: Seen[] = [];
  const errors: ParseError[] = [];
  for (const c of chunks) {
    const err = parser.push(c, (f) => frames.push(seen(f)));
    if (err) errors.push(err);
  }
  return { frames, errors };
}

/** A 16-byte header with arbitrary field values (for malformed frames encodeFrame would not build). */
function header(length: number, kind = 0x04, channelLen = 0, messageLen = 0, id = 1, aux = 0): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32LE(length >>> 0, 0);
  h[4] = kind;
  h[5] = 0;
  h[6] = channelLen;
  h[7] = messageLen;
  h.writeUInt32LE(id >>> 0, 8);
  h.writeUInt32LE(aux >>> 0, 12);
  return h;
}

const SAMPLES: Array<[string, Buffer]> = [
  ['bare header', encodeFrame(0x05, 0, 7, 0, '', '')],
  ['channel only', encodeFrame(0x02, 0, 8, 0, 'QPE/System', '')],
  ['send with data', encodeFrame(0x04, 1, 9, 0, 'sensors/imu/0', 'setVolume(int)', Buffer.from([0x18, 0x2a]))],
  ['utf-8 names', encodeFrame(0x04, 0, 10, 0xffffffff, 'café/ünï', 'größe()', Buffer.from('payload'))],
  ['255-byte names', encodeFrame(0x04, 0, 0xffffffff, 3, 'c'.repeat(255), 'm'.repeat(255), Buffer.alloc(300, 7))],
];
const STREAM = Buffer.concat(SAMPLES.map(([, b]) => b));
const EXPECTED = feed(new FrameParser(MAX), [STREAM]).frames;

test('a stream of frames in one chunk yields every frame, in order', () => {
  assert.is(EXPECTED.length, SAMPLES.length);
  assert.equal(EXPECTED.map((f) => f.channel), ['', 'QPE/System', 'sensors/imu/0', 'café/ünï', 'c'.repeat(255)]);
  assert.equal(EXPECTED[2], { kind: 0x04, flags: 1, id: 9, aux: 0, channel: 'sensors/imu/0', message: 'setVolume(int)', payload: '182a' });
  assert.is(EXPECTED[3]!.aux, 0xffffffff);
  assert.is(EXPECTED[4]!.id, 0xffffffff);
});

test('a stream split in two at every byte boundary yields the same frames', () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const { frames, errors } = feed(new FrameParser(MAX), [STREAM.subarray(0, cut), STREAM.subarray(cut)]);
    assert.equal(errors, [], `cut at ${cut}`);
    assert.equal(frames, EXPECTED, `cut at ${cut}`);
  }
});

test('a stream fed one byte at a time yields the same frames', () => {
  const chunks = Array.from({ length: STREAM.length }, (_, i) => STREAM.subarray(i, i + 1));
  const { frames, errors } = feed(new FrameParser(MAX), chunks);
  assert.equal(errors, []);
  assert.equal(frames, EXPECTED);
});

test('a stream split into three pieces at many boundaries yields the same frames', () => {
  for (let a = 0; a < STREAM.length; a += 7) {
    for (let b = a; b <= STREAM.length; b += 13) {
      const { frames } = feed(new FrameParser(MAX), [STREAM.subarray(0, a), STREAM.subarray(a, b), STREAM.subarray(b)]);
      assert.equal(frames, EXPECTED, `cuts at ${a}, ${b}`);
    }
  }
});

test('many small frames in one chunk are all delivered', () => {
  const frames = Array.from({ length: 10_000 }, (_, i) => encodeFrame(0x04, 0, i + 1, 0, 'a/b', 'm()', Buffer.from([i & 0xff])));
  const { frames: got, errors } = feed(new FrameParser(MAX), [Buffer.concat(frames)]);
  assert.equal(errors, []);
  assert.is(got.length, 10_000);
  assert.ok(got.every((f, i) => f.id === i + 1));
});

test('the frame views point into the stream without copying names', () => {
  const parser = new FrameParser(MAX);
  const chunk = encodeFrame(0x04, 0, 1, 0, 'x/y', 'm()', Buffer.from('abc'));
  let frame: Frame | null = null;
  parser.push(chunk, (f) => (frame = f));
  assert.ok(frame);
  const f = frame as Frame;
  assert.is(f.raw.length, chunk.length);
  assert.is(f.channelEnd, HEADER_SIZE + 3);
  assert.is(f.messageEnd, HEADER_SIZE + 6);
  assert.is(f.raw.buffer, chunk.buffer);
});

test('a frame exactly at the size limit is accepted', () => {
  const max = 4096;
  const frame = encodeFrame(0x04, 0, 1, 0, 'a', 'b', Buffer.alloc(max - HEADER_SIZE - 2));
  assert.is(frame.length, max);
  const { frames, errors } = feed(new FrameParser(max), [frame]);
  assert.equal(errors, []);
  assert.is(frames.length, 1);
});

// Lengths announced by a header: the error comes from the 4-byte prefix alone, before the body arrives.
const BAD_LENGTHS: Array<[string, number, ParseError['code']]> = [
  ['a 4 GiB length prefix', 0xffffffff, 'EMSGSIZE'],
  ['a 2 GiB length prefix', 0x80000000, 'EMSGSIZE'],
  ['one byte over the limit', MAX + 1, 'EMSGSIZE'],
  ['a zero length', 0, 'EPROTO'],
  ['a length of 4 (prefix only)', 4, 'EPROTO'],
  ['a length one below the header', HEADER_SIZE - 1, 'EPROTO'],
];

for (const [what, length, code] of BAD_LENGTHS) {
  test(`${what} is refused with ${code} from the prefix alone`, () => {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32LE(length >>> 0, 0);
    const { frames, errors } = feed(new FrameParser(MAX), [prefix]);
    assert.is(frames.length, 0);
    assert.is(errors.length, 1);
    assert.is(errors[0]!.code, code);
  });

  test(`${what} after a good frame is refused with ${code}, the good frame delivered first`, () => {
    const good = encodeFrame(0x05, 0, 1, 0, '', '');
    const bad = header(length);
    const { frames, errors } = feed(new FrameParser(MAX), [Buffer.concat([good, bad])]);
    assert.is(frames.length, 1);
    assert.is(errors[0]?.code, code);
  });

  test(`${what} split across chunks is refused with ${code}`, () => {
    const bad = header(length);
    const { errors } = feed(new FrameParser(MAX), [bad.subarray(0, 1), bad.subarray(1, 3), bad.subarray(3)]);
    assert.is(errors[0]?.code, code);
  });
}

test('a 4 GiB length prefix is refused without allocating the frame', () => {
  const parser = new FrameParser(MAX);
  const before = process.memoryUsage().arrayBuffers;
  const err = parser.push(header(0xffffffff), () => assert.unreachable('no frame'));
  assert.is(err?.code, 'EMSGSIZE');
  assert.is(parser.buffered, 0);
  assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20);
});

test('an incomplete frame holds only the bytes received, not the announced length', () => {
  const parser = new FrameParser(MAX);
  const err = parser.push(header(MAX).subarray(0, 10), () => assert.unreachable('no frame'));
  assert.is(err, null);
  assert.is(parser.buffered, 10);
});

const OVERRUNS: Array<[string, Buffer]> = [
  ['a channel length past the end', Buffer.concat([header(HEADER_SIZE + 3, 0x04, 4, 0), Buffer.from('abc')])],
  ['a message length past the end', Buffer.concat([header(HEADER_SIZE + 3, 0x04, 1, 3), Buffer.from('abc')])],
  ['both lengths at 255 in a bare header', header(HEADER_SIZE, 0x04, 255, 255)],
  ['names one byte longer than the frame', Buffer.concat([header(HEADER_SIZE + 10, 0x04, 5, 6), Buffer.alloc(10, 0x61)])],
];

for (const [what, frame] of OVERRUNS) {
  test(`${what} is refused with EPROTO`, () => {
    const { frames, errors } = feed(new FrameParser(MAX), [frame]);
    assert.is(frames.length, 0);
    assert.is(errors[0]?.code, 'EPROTO');
  });
}

test('names that exactly fill the frame are accepted (empty payload)', () => {
  const frame = Buffer.concat([header(HEADER_SIZE + 11, 0x04, 5, 6), Buffer.from('chan/msg___')]);
  const { frames, errors } = feed(new FrameParser(MAX), [frame]);
  assert.equal(errors, []);
  assert.equal([frames[0]!.channel, frames[0]!.message, frames[0]!.payload], ['chan/', 'msg___', '']);
});

test('after the first error the parser delivers nothing more, even good frames', () => {
  const parser = new FrameParser(MAX);
  const good = encodeFrame(0x05, 0, 1, 0, '', '');
  const { frames, errors } = feed(parser, [Buffer.concat([good, header(3), good]), good, good]);
  assert.is(frames.length, 1);
  assert.is(errors.length, 3);
  assert.is(errors[0]!.code, 'EPROTO');
  assert.ok(errors.slice(1).every((e) => e.code === 'EPROTO'));
});

test('frames following a bad frame in the same chunk are not delivered', () => {
  const good = encodeFrame(0x05, 0, 2, 0, '', '');
  const { frames } = feed(new FrameParser(MAX), [Buffer.concat([header(HEADER_SIZE, 0x04, 1, 0), good, good])]);
  assert.is(frames.length, 0);
});

test('stop() ends delivery, also in the middle of a chunk', () => {
  const parser = new FrameParser(MAX);
  const frames = Buffer.concat([1, 2, 3].map((id) => encodeFrame(0x05, 0, id, 0, '', '')));
  const ids: number[] = [];
  const err = parser.push(frames, (f) => {
    ids.push(f.id);
    if (f.id === 1) parser.stop();
  });
  assert.is(err, null);
  assert.equal(ids, [1]);
  assert.ok(parser.push(frames, () => assert.unreachable('stopped'))?.code === 'EPROTO');
});

/** A budget that records what the parser holds and can be told to refuse. */
function budget(limit = Infinity) {
  const b = {
    held: 0,
    buffers: 0,
    peak: 0,
    holds: [] as number[],
    heads: [] as FrameHead[],
    hold(bytes: number) {
      if (b.held + bytes > limit) return false;
      b.held += bytes;
      b.buffers++;
      b.holds.push(bytes);
      b.peak = Math.max(b.peak, b.held);
      return true;
    },
    release(bytes: number, buffers: number) {
      b.held -= bytes;
      b.buffers -= buffers;
    },
    refused(head: FrameHead) {
      b.heads.push(head);
    },
  };
  return b;
}

test('a large frame dripped one byte per chunk arrives whole, holding about what arrived in few buffers', () => {
  // A peer writing one byte at a time must not make the parser keep a buffer per chunk (a cheap DoS),
  // nor make it hold the announced size up front: small pieces are copied together as they come.
  const frame = encodeFrame(0x04, 0, 1, 0, 'a', 'b', Buffer.alloc(64 << 10, 7));
  const b = budget();
  const parser = new FrameParser(MAX, b);
  const got: Buffer[] = [];
  for (let i = 0; i < frame.length; i++) {
    parser.push(frame.subarray(i, i + 1), (f) => got.push(Buffer.from(f.raw)));
    if (i < frame.length - 1) {
      assert.is(parser.buffered, i + 1);
      assert.ok(b.held <= 2 * (i + 1) + 4096, `held ${b.held} after ${i + 1} bytes`);
    }
  }
  assert.is(got.length, 1);
  assert.ok(got[0]!.equals(frame));
  assert.ok(b.holds.length <= 8, `${b.holds.length} buffers for 64 KiB`);
  assert.equal([parser.buffered, b.held, b.buffers], [0, 0, 0]);
});

test('a large frame arriving in whole read chunks keeps the chunks as they are, joined once', () => {
  const frame = encodeFrame(0x04, 0, 1, 0, 'a', 'b', Buffer.alloc(200_000, 3));
  const b = budget();
  const parser = new FrameParser(MAX, b);
  const got: Buffer[] = [];
  // Each chunk its own memory, as a socket read gives.
  const chunks = [16, 65536, 65536, 65536, frame.length - 16 - 3 * 65536].reduce<Buffer[]>((acc, n) => {
    const at = acc.reduce((x, c) => x + c.length, 0);
    acc.push(Buffer.from(frame.subarray(at, at + n)));
    return acc;
  }, []);
  for (const c of chunks) parser.push(c, (f) => got.push(Buffer.from(f.raw)));
  assert.ok(got[0]!.equals(frame));
  // The three full chunks are held as they are; only the last piece (a sliver of nothing) completes it.
  assert.equal(b.holds.slice(0, 3), [65536, 65536, 65536]);
  assert.is(b.held, 0);
});

test('the start of a frame at the end of a large chunk is copied, not held by keeping the whole chunk', () => {
  const big = encodeFrame(0x04, 0, 9, 0, 'a', 'b', Buffer.alloc(100_000, 1));
  const filler = encodeFrame(0x05, 0, 1, 0, '', '', Buffer.alloc(65536 - 16 - 100));
  const chunk = Buffer.concat([filler, big.subarray(0, 100)]);
  const b = budget();
  const parser = new FrameParser(MAX, b);
  const ids: number[] = [];
  parser.push(chunk, (f) => ids.push(f.id));
  assert.equal(ids, [1]);
  assert.is(parser.buffered, 100);
  assert.ok(b.held <= 4096, `held ${b.held}: the 64 KiB chunk is not pinned for 100 bytes`);
});

test('an incomplete frame up to 4 KiB gets one buffer of its own size', () => {
  const frame = encodeFrame(0x04, 0, 1, 0, 'a', 'b', Buffer.alloc(3000, 5));
  const b = budget();
  const parser = new FrameParser(MAX, b);
  const got: Buffer[] = [];
  for (let at = 0; at < frame.length; at += 700) parser.push(frame.subarray(at, at + 700), (f) => got.push(Buffer.from(f.raw)));
  assert.ok(got[0]!.equals(frame));
  assert.equal(b.holds, [frame.length]);
});

test('frames complete within a chunk never ask the budget', () => {
  const b = budget(0);
  const frames = Buffer.concat([1, 2, 3].map((id) => encodeFrame(0x04, 0, id, 0, 'a', 'b', Buffer.alloc(5000))));
  const ids: number[] = [];
  assert.is(new FrameParser(MAX, b).push(frames, (f) => ids.push(f.id)), null);
  assert.equal([ids, b.holds, b.heads], [[1, 2, 3], [], []]);
});

const REFUSALS: Array<[string, number, number]> = [
  ['a small frame refused on its header', 3000, 0],
  ['a large frame refused on its first piece', 300_000, 0],
  ['a large frame refused after pieces were held', 300_000, 150_000],
];

for (const [what, size, limit] of REFUSALS) {
  test(`${what}: reported with its header, its bytes skipped, what it held given back, the next frame parsed`, () => {
    const refusedFrame = encodeFrame(0x09, 0, 42, 5000, 'svc/x', 'm()', Buffer.alloc(size - 24, 9));
    const next = encodeFrame(0x05, 0, 43, 0, '', '');
    const stream = Buffer.concat([refusedFrame, next]);
    const b = budget(limit);
    const parser = new FrameParser(MAX, b);
    const ids: number[] = [];
    const step = size < 65536 ? 1000 : 65536;
    for (let at = 0; at < stream.length; at += step) {
      assert.is(parser.push(Buffer.from(stream.subarray(at, at + step)), (f) => ids.push(f.id)), null);
    }
    assert.equal(b.heads, [{ kind: 0x09, flags: 0, id: 42, aux: 5000, length: refusedFrame.length }]);
    assert.equal(ids, [43]);
    assert.equal([b.held, b.buffers, parser.midFrame], [0, 0, false]);
  });
}

test('midFrame and framesEnded tell one incomplete frame from the next', () => {
  const parser = new FrameParser(MAX);
  const a = encodeFrame(0x04, 0, 1, 0, 'a', 'b', Buffer.alloc(100));
  const c = encodeFrame(0x04, 0, 2, 0, 'a', 'b', Buffer.alloc(100));
  parser.push(a.subarray(0, 50), () => {});
  const first = parser.framesEnded;
  assert.ok(parser.midFrame);
  parser.push(a.subarray(50, 60), () => {});
  assert.is(parser.framesEnded, first, 'the same frame');
  parser.push(Buffer.concat([a.subarray(60), c.subarray(0, 2)]), () => {});
  assert.ok(parser.midFrame);
  assert.ok(parser.framesEnded > first, 'another frame');
  parser.push(c.subarray(2), () => {});
  assert.not.ok(parser.midFrame);
});

test('stop() gives back what an incomplete frame held', () => {
  const b = budget();
  const parser = new FrameParser(MAX, b);
  parser.push(Buffer.from(encodeFrame(0x04, 0, 1, 0, 'a', 'b', Buffer.alloc(200_000)).subarray(0, 100_000)), () => {});
  assert.ok(b.held > 0);
  parser.stop();
  assert.equal([b.held, b.buffers, parser.buffered], [0, 0, 0]);
});

test('a stream of large and small frames split at random boundaries yields the same frames and holds nothing after', () => {
  let seed = 12345;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const frames = Array.from({ length: 40 }, (_, i) => encodeFrame(0x04, 0, i + 1, 0, 'c', 'm', Buffer.alloc([10, 3000, 5000, 70_000][i % 4]!, i)));
  const stream = Buffer.concat(frames);
  for (let round = 0; round < 20; round++) {
    const b = budget();
    const parser = new FrameParser(MAX, b);
    const got: Buffer[] = [];
    for (let at = 0; at < stream.length; ) {
      const n = 1 + rand([7, 500, 9000, 70_000][rand(4)]!);
      parser.push(Buffer.from(stream.subarray(at, at + n)), (f) => got.push(Buffer.from(f.raw)));
      at += n;
    }
    assert.is(got.length, frames.length, `seed round ${round}`);
    got.forEach((g, i) => assert.ok(g.equals(frames[i]!), `frame ${i} in round ${round}`));
    assert.equal([b.held, b.buffers], [0, 0]);
  }
});

test.run();
