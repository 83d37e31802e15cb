// The wire's one CBOR dialect (docs/PROTOCOL.md 7), its rules written once, and the one reader and writer of item heads.
//
// Message data (data.ts, cbor-x) and control payloads (control.ts, on this file) are one dialect
// of CBOR. A receiver refuses what breaks it with EPROTO; an encoder refuses a value with EINVAL.
//
// Accepted by both decoders
//   - a head's argument in 0, 1, 2, 4 or 8 bytes, shortest form or not (data written in place in
//     shared memory are `5a` + u32 whatever their size, docs/SHM.md §9);
//   - definite- and indefinite-length arrays and maps;
//   - floats of 16, 32 and 64 bits; false, true, null (and undefined, in data only).
// Refused by both (EPROTO)
//   - indefinite-length byte and text strings (cbor-x cannot read them, so control does not either);
//   - additional information 28–30; an indefinite length on an integer or a tag; a break outside
//     an indefinite-length array or map; simple values other than false, true, null, undefined;
//   - a payload ending inside an item, a length or count beyond the bytes left, bytes after its item.
// Integers: a head's argument is exact up to 2^64 − 1 (headArg: a bigint beyond 2^53 − 1).
//   - data: 8-byte integers (`1b`/`3b`) always decode as bigint, shorter ones as number; a bigint
//     encodes as an 8-byte integer, or tag 2/3 beyond 64 bits.
//   - control: integers are numbers. Any head size within ±(2^53 − 1) decodes to that number;
//     beyond it is refused (EPROTO); the encoder refuses a bigint (EINVAL). Never narrowed.
// Control payloads are narrower than data (control.ts): a map with text keys whose values are
//   text, numbers, booleans, null, and arrays and maps of those; byte strings, tags, undefined and
//   other keys are refused (EPROTO); text must be UTF-8 (data: cbor-x reads bad UTF-8 as U+FFFD).
//   At most MAX_DEPTH levels (the top item is level 1), checked before reading the deeper item;
//   counts and lengths are checked against the bytes left before anything is built for them.
// Data have no depth limit of their own: nesting past the receiver's stack is EPROTO.
// Writing: heads in shortest form (putHead); integers within 32 bits as integers, other numbers
//   as float64 (both encoders).
import { QcopError } from './errors.js';

/** Major types: the top three bits of a head. */
export const Major = { Uint: 0, Nint: 1, Bytes: 2, Text: 3, Array: 4, Map: 5, Tag: 6, Simple: 7 } as const;

/** Levels of nesting a control payload may have; the payload's own item is level 1. */
export const MAX_DEPTH = 32;

/** Argument of an indefinite-length array or map. */
export const INDEFINITE = -1;

const TWO_32 = 0x100000000;

/** Bytes of the head of an item with argument `n` (a length or a value, at most 2^53 − 1), in shortest form. */
export const headSize = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < TWO_32 ? 5 : 9);

/** Writes the head of major type `major` with argument `n` at `at`, in shortest form; returns the offset after it. */
export function putHead(buf: Buffer, at: number, major: number, n: number): number {
  const m = major << 5;
  if (n < 24) {
    buf[at] = m | n;
    return at + 1;
  }
  if (n < 0x100) {
    buf[at] = m | 24;
    buf[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    buf[at] = m | 25;
    return buf.writeUInt16BE(n, at + 1);
  }
  if (n < TWO_32) {
    buf[at] = m | 26;
    return buf.writeUInt32BE(n, at + 1);
  }
  buf[at] = m | 27;
  buf.writeUInt32BE(Math.floor(n / TWO_32), at + 1);
  return buf.writeUInt32BE(n >>> 0, at + 5);
}

/** Writes a 5-byte head (4-byte argument, not shortest form) at `at`: where data follow at a fixed offset (a loan, PROTOCOL 8). */
export function putHead32(buf: Buffer, at: number, major: number, n: number): number {
  buf[at] = (major << 5) | 26;
  return buf.writeUInt32BE(n, at + 1);
}

/** Bytes of the head whose first byte is `first`: 1, 2, 3, 5 or 9; 0 for additional information 28–31 (reserved, or indefinite). */
export const headBytes = (first: number): number => {
  const info = first & 31;
  return info < 24 ? 1 : info === 24 ? 2 : info === 25 ? 3 : info === 26 ? 5 : info === 27 ? 9 : 0;
};

const u32 = (b: Uint8Array, i: number): number => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;

/**
 * The argument of the head of `size` bytes (headBytes of its first byte, 1 to 9) at `at` of `b`;
 * the caller checked the bytes are there. A number, or a bigint for an 8-byte argument beyond 2^53 − 1.
 */
export function headArg(b: Uint8Array, at: number, size: number): number | bigint {
  if (size === 1) return b[at]! & 31;
  if (size === 2) return b[at + 1]!;
  if (size === 3) return (b[at + 1]! << 8) | b[at + 2]!;
  if (size === 5) return u32(b, at + 1);
  const hi = u32(b, at + 1);
  const lo = u32(b, at + 5);
  return hi < 0x200000 ? hi * TWO_32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
}

/** Reads heads in order, refusing (EPROTO) the forms the dialect refuses; the control decoder walks items with it. */
export class HeadReader {
  at = 0;
  /** Major type of the last head read. */
  major = 0;

  /** `what` names the bytes in error messages ("control payload"). */
  constructor(private readonly b: Uint8Array, private readonly what: string) {}

  /** An EPROTO error about these bytes. */
  refuse(why: string): QcopError {
    return new QcopError('EPROTO', `${this.what} ${why}`);
  }

  private need(n: number): void {
    if (n > this.b.length - this.at) throw this.refuse('ends inside an item');
  }

  /**
   * Reads one head. Majors 0–6: returns its argument (a value, length or count; INDEFINITE for an
   * indefinite-length array or map). Major 7: returns its additional information; `simple` reads the rest.
   */
  head(): number | bigint {
    this.need(1);
    const first = this.b[this.at]!;
    this.major = first >> 5;
    if (this.major === Major.Simple) {
      this.at++;
      return first & 31;
    }
    const size = headBytes(first);
    if (size === 0) {
      if ((first & 31) !== 31) throw this.refuse(`has a reserved head (0x${first.toString(16)})`);
      if (this.major === Major.Bytes || this.major === Major.Text) throw this.refuse('has an indefinite-length string (refused, PROTOCOL 7.1)');
      if (this.major !== Major.Array && this.major !== Major.Map) throw this.refuse(`has an indefinite length on major type ${this.major}`);
      this.at++;
      return INDEFINITE;
    }
    this.need(size);
    const n = headArg(this.b, this.at, size);
    this.at += size;
    return n;
  }

  /** The value of a major-7 item whose additional information `info` was just read: false, true, null, undefined or a float. */
  simple(info: number): boolean | null | undefined | number {
    if (info >= 20 && info <= 23) return info === 20 ? false : info === 21 ? true : info === 22 ? null : undefined;
    if (info === 31) throw this.refuse('has a break outside an indefinite-length item');
    if (info < 25 || info > 27) throw this.refuse(`has a simple value the dialect refuses (${info})`);
    const size = headBytes(info) - 1;
    this.need(size);
    const view = new DataView(this.b.buffer, this.b.byteOffset + this.at, size);
    this.at += size;
    return size === 2 ? half(view.getUint16(0)) : size === 4 ? view.getFloat32(0) : view.getFloat64(0);
  }

  /** The `n` bytes of a string whose head was just read, refused when fewer are left. */
  take(n: number | bigint): Uint8Array {
    if (typeof n !== 'number' || n > this.b.length - this.at) throw this.refuse(`has a length (${n}) beyond its end`);
    this.at += n;
    return this.b.subarray(this.at - n, this.at);
  }

  /** The count of an array (`per` = 1) or map (2) just read, refused when the bytes left cannot hold that many items. */
  count(n: number | bigint, per: number): number {
    if (n === INDEFINITE) return n;
    if (typeof n !== 'number' || n * per > this.b.length - this.at) throw this.refuse(`announces ${n} items in ${this.b.length - this.at} bytes`);
    return n;
  }

  /** True, past it, when the next byte is the break ending an indefinite-length array or map. */
  atBreak(): boolean {
    this.need(1);
    if (this.b[this.at] !== 0xff) return false;
    this.at++;
    return true;
  }

  /** Refuses bytes after the one item. */
  end(): void {
    if (this.at !== this.b.length) throw this.refuse(`has ${this.b.length - this.at} bytes after its item`);
  }
}

function half(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}
