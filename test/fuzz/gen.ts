// Fuzz inputs: valid frames, mutated frames and garbage, generated from a seeded PRNG, and what the broker should do with them.
import { encodeData } from '../../runtime/protocol/data.js';
import { decodeControl } from '../../runtime/protocol/control.js';
import { decodeName } from '../../runtime/protocol/names.js';
import { FrameParser } from '../../runtime/protocol/parser.js';
import { K, Rng, helloFrame, rawFrame } from './raw.js';

/** Id of the request every session ends with; its answer proves the broker read the whole stream. */
export const SYNC_ID = 0x5eed5eed;

const CHANNELS = ['a', 'a/b', 'fuzz/x', 'fuzz/y/z', 'QPE/System', 'QPE/Application/x', 'ünï/cödé', 'tst_QcopChannel::send()'];
const PATTERNS = ['*', 'fuzz/*', 'QPE/*', 'a/?', 'f[a-z]zz/*', '*[!x]', 'a*b*', '*/?'];
const MESSAGES = ['m()', 'setVolume(int)', 'ping()', 'größe(QString)'];
const NAME_ALPHABET = ['a', 'b', 'z', 'x', '/', '*', '?', '[', ']', '!', '^', '-', '.', '(', ')', '\\', 'é', ':'];
const BAD_NAMES: Buffer[] = [
  Buffer.alloc(0),
  Buffer.from('a//b'),
  Buffer.from('/a'),
  Buffer.from('a/'),
  Buffer.from('/'),
  Buffer.from('a\0b'),
  Buffer.from('\x01\x02'),
  Buffer.from('a\x7f'),
  Buffer.from([0x61, 0xc2, 0x85]), // U+0085, a C1 control
  Buffer.from([0xff, 0xfe]),
  Buffer.from([0x61, 0xc3]), // truncated sequence
  Buffer.from([0xed, 0xa0, 0x80]), // encoded surrogate
  Buffer.from([0xc0, 0xaf]), // overlong '/'
  Buffer.from([0xef, 0xbb, 0xbf, 0x61]), // BOM + 'a'
  Buffer.alloc(255, 0x61),
  Buffer.concat([Buffer.alloc(254, 0x61), Buffer.from([0xc3])]),
];
const ERROR_CODES = ['EFAIL', 'EINVAL', 'E1', 'ENOPE', 'bad', '', 'E' + 'X'.repeat(40), 'ÉRROR'];

export interface Session {
  /** Everything written to the socket. */
  bytes: Buffer;
  /** Frames (or garbage blobs) generated: what the "at least N frames" target counts. */
  frames: number;
  /** How to write: whole chunks of random size, or dripping a few bytes at a time. */
  drip: boolean;
  label: string;
}

function randomName(rng: Rng, maxLen = 12): string {
  let s = '';
  const n = 1 + rng.int(maxLen);
  for (let i = 0; i < n; i++) s += rng.pick(NAME_ALPHABET);
  return s;
}

// Wildcard pieces: nested stars, `?`, sets of every form (negated, ranges, `]` and `-` literal, unclosed), code points.
const WILD_PIECES = ['*', '*', '?', 'a', 'a', 'b', '/', '[ab]', '[!a]', '[^b]', '[a-c]', '[]a]', '[-a]', '[a-]', '[', ']', 'é', '😀', '[é-ë]', '[😀-😂]'];

/** The longest prefix of `s` that is at most 255 bytes of UTF-8, whole code points, without a final `/`. */
function fit(s: string): string {
  const cps = Array.from(s);
  while (cps.length > 1 && (Buffer.byteLength(cps.join('')) > 255 || cps[cps.length - 1] === '/')) cps.pop();
  return cps.join('');
}

/** A pattern of up to 255 bytes: the backtracking bombs, long segments between stars, or random nesting. */
export function wildPattern(rng: Rng): string {
  switch (rng.int(4)) {
    case 0:
      return fit('*a'.repeat(1 + rng.int(40)) + rng.pick(['*b', '*', 'b', '*?b*', '*[b]*']));
    case 1:
      return fit('*' + rng.pick(['a', '?', '[a-c]', 'é', '[!b]']).repeat(1 + rng.int(120)) + rng.pick(['b*', '*', 'b*a', '*b']));
    default: {
      let p = rng.chance(0.5) ? '*' : '';
      for (let i = 0, n = 1 + rng.int(60); i < n; i++) p += rng.pick(WILD_PIECES);
      p = fit(p.replace(/\/\/+/g, '/').replace(/^\//, ''));
      return p.includes('*') ? p : fit(p + '*');
    }
  }
}

/** A concrete channel of up to 255 bytes, mostly of the letters the wild patterns use, so that they nearly match. */
export function longChannel(rng: Rng): string {
  const unit = rng.pick(['a', 'a', 'ab', 'a/b', 'é', 'aé', 'b/a', '😀a', '[a]']);
  let s = unit.repeat(1 + rng.int(255));
  if (rng.chance(0.5)) s += rng.pick(['b', 'x', '/b', 'ë', '😁']);
  return fit(s.replace(/^\//, ''));
}

function channel(rng: Rng): Buffer {
  const r = rng.next();
  if (r < 0.4) return Buffer.from(rng.pick(CHANNELS));
  if (r < 0.52) return Buffer.from(rng.pick(PATTERNS));
  if (r < 0.6) return Buffer.from(wildPattern(rng));
  if (r < 0.68) return Buffer.from(longChannel(rng));
  if (r < 0.86) return Buffer.from(randomName(rng));
  return rng.pick(BAD_NAMES);
}

function message(rng: Rng): Buffer {
  const r = rng.next();
  if (r < 0.8) return Buffer.from(rng.pick(MESSAGES));
  if (r < 0.9) return Buffer.from(randomName(rng, 30));
  return rng.pick(BAD_NAMES);
}

function randomValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 6 : 9)) {
    case 0: return rng.int(1000) - 500;
    case 1: return rng.next() * 1e6;
    case 2: return randomName(rng, 20);
    case 3: return null;
    case 4: return rng.bytes(rng.int(64));
    case 5: return BigInt(rng.u32()) * 0x100000000n + BigInt(rng.u32());
    case 6: return Array.from({ length: rng.int(5) }, () => randomValue(rng, depth + 1));
    case 7: return Object.fromEntries(Array.from({ length: rng.int(5) }, (_, i) => [`k${i}`, randomValue(rng, depth + 1)]));
    default: return new Date(rng.u32() * 1000);
  }
}

function payload(rng: Rng): Buffer {
  const r = rng.next();
  if (r < 0.35) return Buffer.alloc(0);
  if (r < 0.75) return encodeData(randomValue(rng));
  if (r < 0.97) return rng.bytes(rng.int(512));
  return rng.bytes(4096 + rng.int(60 << 10));
}

/** A request a real client could send, with fuzzed names, ids and payloads: errors at worst, never fatal. */
function request(rng: Rng, watchIds: number[]): Buffer {
  const id = rng.chance(0.05) ? 0 : rng.u32();
  switch (rng.int(15)) {
    case 0:
    case 1:
      return rawFrame(K.Listen, 0, id, 0, channel(rng), '');
    case 2:
      return rawFrame(K.Unlisten, 0, id, 0, channel(rng), '');
    case 3:
    case 4:
      return rawFrame(K.Send, rng.chance(0.2) ? 1 : 0, id, 0, channel(rng), message(rng), payload(rng));
    case 5:
      return rawFrame(K.Flush, 0, id, 0, '', '');
    case 6:
      return rawFrame(K.Query, 0, id, 0, channel(rng), '');
    case 7: {
      const wid = rng.chance(0.1) ? 0 : rng.chance(0.2) && watchIds.length ? rng.pick(watchIds) : id;
      watchIds.push(wid);
      return rawFrame(K.Watch, 0, wid, 0, channel(rng), '');
    }
    case 8:
      return rawFrame(K.Unwatch, 0, id, watchIds.length && rng.chance(0.7) ? rng.pick(watchIds) : rng.u32(), '', '');
    case 9: {
      const timeouts = [0, 1, 5, 20, 100, 5000, 0x7fffffff, 0xffffffff];
      return rawFrame(K.Call, 0, id, rng.pick(timeouts), channel(rng), message(rng), payload(rng));
    }
    case 10: {
      // Replies to calls that mostly do not exist; sometimes to small ids the broker did issue.
      const callId = rng.chance(0.5) ? 1 + rng.int(50) : rng.u32();
      const flags = rng.pick([0, 0x04, 0x40, 0x44, rng.int(256)]);
      const failure = (flags & 0x04) !== 0;
      return rawFrame(K.Reply, flags, callId, 0, rng.chance(0.1) ? channel(rng) : '', failure ? rng.pick(ERROR_CODES) : '', failure ? Buffer.from('text') : payload(rng));
    }
    case 11:
      return rawFrame(K.Stats, 0, id, 0, '', '');
    case 12: {
      // Shared memory (PROTOCOL 8): pools that do not exist, tokens never given, descriptors out of range.
      const r = rng.int(3);
      if (r === 0) {
        const body = rng.chance(0.7) ? encodeData({ key: randomName(rng), max: rng.u32() }) : payload(rng);
        return rawFrame(K.Pool, rng.pick([0, 0x80, rng.int(256)]), id, rng.int(70), '', '', body);
      }
      if (r === 1) return rawFrame(K.Release, 0, id, rng.chance(0.5) ? rng.int(20) : rng.u32(), '', '');
      return rawFrame(K.Send, 0x20 | (rng.chance(0.2) ? 1 : 0), id, 0, channel(rng), message(rng), rng.chance(0.8) ? rng.bytes(16) : rng.bytes(rng.int(40)));
    }
    default: {
      // Kinds a client does not send or nobody knows (broker-side kinds, gaps, 0 and 0xff).
      const kind = rng.pick([0x00, 0x0e, 0x1f, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x80, 0xff, rng.int(256)]);
      return rawFrame(kind === K.Hello ? 0x3e : kind, rng.int(256), id, rng.u32(), channel(rng), message(rng), payload(rng));
    }
  }
}

/** Mutations that keep the framing intact (the stream stays in sync). */
function mutateInFrame(rng: Rng, f: Buffer): Buffer {
  const m = Buffer.from(f);
  switch (rng.int(5)) {
    case 0:
      m[5] = rng.int(256); // flags
      break;
    case 1:
      m.writeUInt32LE(rng.u32(), 8); // id
      break;
    case 2:
      m.writeUInt32LE(rng.u32(), 12); // aux
      break;
    case 3: {
      const kind = rng.int(256);
      m[4] = kind; // a kind of 1 is a second hello: fatal, as it should be
      break;
    }
    default:
      // bit flips inside names and payload (past the header)
      if (m.length > 16) for (let i = 0; i < 1 + rng.int(4); i++) m[16 + rng.int(m.length - 16)]! ^= 1 << rng.int(8);
  }
  return m;
}

/** Mutations that break the framing: the broker must close the stream (or wait for bytes that never come). */
function breakFrame(rng: Rng, f: Buffer): Buffer {
  const m = Buffer.from(f);
  switch (rng.int(7)) {
    case 0:
      m.writeUInt32LE(rng.pick([0, 1, 4, 15, 0xffffffff, 0x80000000, 0x00100001, (1 << 20) + 1]), 0);
      return m;
    case 1:
      m.writeUInt32LE(Math.max(0, m.readUInt32LE(0) + rng.int(33) - 16), 0); // off by a little
      return m;
    case 2:
      m[rng.int(4)]! ^= 1 << rng.int(8); // bit flip in the length
      return m;
    case 3:
      m[6 + rng.int(2)] = 200 + rng.int(56); // name lengths overrunning the frame
      return m;
    case 4:
      return m.subarray(0, rng.int(m.length)); // truncated: the next frame's bytes are read as this one's
    case 5:
      for (let i = 0; i < 1 + rng.int(6); i++) m[rng.int(Math.min(16, m.length))]! ^= 1 << rng.int(8); // header bit flips
      return m;
    default:
      return Buffer.concat([m, rng.bytes(1 + rng.int(64))]); // stray bytes after a frame
  }
}

function badHello(rng: Rng, name: string): Buffer {
  switch (rng.int(6)) {
    case 0:
      return helloFrame(name, rng.u32(), rng.pick([0, 2, 0xffffffff])); // unsupported version
    case 1:
      return rawFrame(K.Hello, 0, 1, 1, '', Buffer.from([0xff, 0x61]), encodeData({ features: [] })); // name not UTF-8
    case 2:
      return rawFrame(K.Hello, 0, 1, 1, '', name, rng.bytes(1 + rng.int(40))); // payload not CBOR
    case 3:
      return rawFrame(K.Hello, rng.int(256), rng.u32(), 1, rng.bytes(rng.int(20)), name, encodeData(randomValue(rng))); // odd but acceptable
    case 4:
      return Buffer.concat([helloFrame(name), helloFrame(name)]); // hello twice
    default:
      return mutateInFrame(rng, helloFrame(name));
  }
}

/** One connection's input. `budget` is the most frames it should hold. */
export function session(rng: Rng, index: number, budget: number): Session {
  const name = `fuzz-${index}`;
  const r = rng.next();
  const parts: Buffer[] = [];
  let frames = 0;
  let label: string;
  if (r < 0.07) {
    label = 'garbage';
    for (let i = 0, n = 1 + rng.int(3); i < n; i++, frames++) parts.push(rng.bytes(1 + rng.int(2048)));
  } else if (r < 0.12) {
    label = 'before-hello';
    for (let i = 0, n = 1 + rng.int(Math.min(20, budget)); i < n; i++, frames++) parts.push(request(rng, []));
  } else if (r < 0.18) {
    label = 'bad-hello';
    parts.push(badHello(rng, name));
    frames++;
    for (let i = 0, n = rng.int(Math.min(50, budget)); i < n; i++, frames++) parts.push(request(rng, []));
  } else {
    label = 'session';
    parts.push(helloFrame(name, index, 1, rng.chance(0.3) ? ['lost', 'call', 'watch', 'shm'] : ['lost', 'call', 'watch']));
    frames++;
    const watchIds: number[] = [];
    const n = Math.min(budget, 20 + rng.int(380));
    for (let i = 0; i < n; i++, frames++) {
      let f = request(rng, watchIds);
      const p = rng.next();
      if (p < 0.0015) f = breakFrame(rng, f);
      else if (p < 0.15) f = mutateInFrame(rng, f);
      parts.push(f);
    }
  }
  parts.push(rawFrame(K.Stats, 0, SYNC_ID, 0, '', ''));
  const bytes = Buffer.concat(parts);
  return { bytes, frames, drip: bytes.length < 8192 && rng.chance(0.05), label };
}

export type Expectation = 'sync' | 'fatal' | 'incomplete' | 'swallowed';

/**
 * What the broker must do with a connection's bytes, judged only by framing and the handshake
 * rules (PROTOCOL 1, 2.1, 5.1): close it after an error frame, wait for the rest of a frame, or
 * answer the final request (when it is still a frame of its own).
 */
export function expectation(bytes: Buffer, maxFrameBytes: number): Expectation {
  const parser = new FrameParser(maxFrameBytes);
  let first = true;
  let fatal = false;
  let last: { kind: number; id: number } | null = null;
  const err = parser.push(bytes, (f) => {
    last = f;
    if (fatal) return;
    if (first) {
      first = false;
      if (f.kind !== K.Hello || f.aux !== 1 || decodeName(f.raw, f.channelEnd, f.messageEnd) === null) return void (fatal = true);
      try {
        decodeControl(f.raw.subarray(f.messageEnd));
      } catch {
        fatal = true;
      }
      return;
    }
    if (f.kind === K.Hello) fatal = true;
  });
  if (fatal || err) return 'fatal';
  if (parser.buffered > 0) return 'incomplete';
  // A mutated length can make a frame take in the ones after it, the final request included:
  // then there is nothing to answer (seed 350362364, connection 398).
  const end = last as { kind: number; id: number } | null;
  return end !== null && end.kind === K.Stats && end.id === SYNC_ID ? 'sync' : 'swallowed';
}
