// Control payloads (PROTOCOL 7.1): hello, welcome, flush, stats, pool. A small CBOR codec of our own,
// so the broker never loads cbor-x (about 3 MiB of a daemon's memory) for a handful of maps.
import { QcopError } from './errors.js';

/** Nesting deeper than this is refused: a hostile hello cannot exhaust the broker's stack. */
const MAX_DEPTH = 32;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes of the CBOR head of an item with argument `n` (a length or a value), in shortest form. */
export const headSize = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9);

/** Writes the CBOR head of major type `major` with argument `n` at `at`, in shortest form; returns the offset after it. */
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
  if (n < 0x100000000) {
    buf[at] = m | 26;
    return buf.writeUInt32BE(n, at + 1);
  }
  buf[at] = m | 27;
  return buf.writeBigUInt64BE(BigInt(n), at + 1);
}

class Writer {
  private buf = Buffer.allocUnsafe(256);
  at = 0;

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  head(major: number, n: number): void {
    this.room(9);
    this.at = putHead(this.buf, this.at, major, n);
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  byte(x: number): void {
    this.room(1);
    this.buf[this.at++] = x;
  }

  float(x: number): void {
    this.room(9);
    this.buf[this.at++] = 0xfb;
    this.at = this.buf.writeDoubleBE(x, this.at);
  }

  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.at));
  }
}

function write(w: Writer, v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new QcopError('EINVAL', `control payload nested deeper than ${MAX_DEPTH}`);
  if (v === null) return w.byte(0xf6);
  if (v === undefined) return w.byte(0xf7);
  if (v === false) return w.byte(0xf4);
  if (v === true) return w.byte(0xf5);
  if (typeof v === 'number') {
    // As message data (PROTOCOL 7.1): integers within 32 bits as integers, other numbers as float64.
    if (Number.isInteger(v) && v >= -0x100000000 && v < 0x100000000) return v >= 0 ? w.head(0, v) : w.head(1, -1 - v);
    return w.float(v);
  }
  if (typeof v === 'bigint') return write(w, Number(v), depth);
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    w.head(3, b.length);
    return w.bytes(b);
  }
  if (v instanceof Uint8Array) {
    w.head(2, v.length);
    return w.bytes(v);
  }
  if (Array.isArray(v)) {
    w.head(4, v.length);
    for (const x of v) write(w, x, depth + 1);
    return;
  }
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    w.head(5, entries.length);
    for (const [k, x] of entries) {
      write(w, k, depth + 1);
      write(w, x, depth + 1);
    }
    return;
  }
  throw new QcopError('EINVAL', `a control payload cannot carry a ${typeof v}`);
}

/** Encodes a control payload: maps with text keys, arrays, text, bytes, numbers, booleans, null. */
export function encodeControl(value: unknown): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  const w = new Writer();
  write(w, value, 0);
  return w.done();
}

const BREAK = Symbol('break');

class Reader {
  at = 0;
  constructor(private readonly b: Uint8Array, private readonly view = new DataView(b.buffer, b.byteOffset, b.byteLength)) {}

  private need(n: number): void {
    if (this.at + n > this.b.length) throw new QcopError('EPROTO', 'control payload ends inside an item');
  }

  /** The argument of a head: a length or a value; -1 for an indefinite length. */
  private arg(info: number): number {
    if (info < 24) return info;
    if (info === 31) return -1;
    const n = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (n === 0) throw new QcopError('EPROTO', `control payload has a reserved head (${info})`);
    this.need(n);
    const at = this.at;
    this.at += n;
    if (n === 1) return this.b[at]!;
    if (n === 2) return this.view.getUint16(at);
    if (n === 4) return this.view.getUint32(at);
    return Number(this.view.getBigUint64(at));
  }

  item(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new QcopError('EPROTO', `control payload nested deeper than ${MAX_DEPTH}`);
    this.need(1);
    const first = this.b[this.at++]!;
    const major = first >> 5;
    const info = first & 31;
    if (major === 7) return this.simple(info);
    const n = this.arg(info);
    switch (major) {
      case 0:
        return n;
      case 1:
        return -1 - n;
      case 2:
      case 3: {
        const s = n < 0 ? this.chunks(major) : this.take(n);
        return major === 2 ? Buffer.from(s) : this.text(s);
      }
      case 4: {
        const out: unknown[] = [];
        for (let i = 0; n < 0 || i < n; i++) {
          const x = this.item(depth + 1);
          if (x === BREAK) {
            if (n < 0) break;
            throw new QcopError('EPROTO', 'control payload has a stray break');
          }
          out.push(x);
        }
        return out;
      }
      case 5: {
        const out: Record<string, unknown> = {};
        for (let i = 0; n < 0 || i < n; i++) {
          const k = this.item(depth + 1);
          if (k === BREAK) {
            if (n < 0) break;
            throw new QcopError('EPROTO', 'control payload has a stray break');
          }
          const v = this.item(depth + 1);
          if (v === BREAK) throw new QcopError('EPROTO', 'control payload map lacks a value');
          Object.defineProperty(out, String(k), { value: v, enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      default: // 6: a tag; its content is what counts here
        return this.item(depth + 1);
    }
  }

  private simple(info: number): unknown {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 25: {
        this.need(2);
        const h = this.view.getUint16(this.at);
        this.at += 2;
        return half(h);
      }
      case 26:
        this.need(4);
        this.at += 4;
        return this.view.getFloat32(this.at - 4);
      case 27:
        this.need(8);
        this.at += 8;
        return this.view.getFloat64(this.at - 8);
      case 31:
        return BREAK;
      default:
        if (info < 20) return undefined;
        if (info === 24) {
          this.need(1);
          this.at++;
          return undefined;
        }
        throw new QcopError('EPROTO', `control payload has a reserved simple value (${info})`);
    }
  }

  private take(n: number): Uint8Array {
    this.need(n);
    this.at += n;
    return this.b.subarray(this.at - n, this.at);
  }

  private chunks(major: number): Uint8Array {
    const parts: Uint8Array[] = [];
    for (;;) {
      this.need(1);
      const first = this.b[this.at++]!;
      if (first === 0xff) break;
      if (first >> 5 !== major || (first & 31) === 31) throw new QcopError('EPROTO', 'control payload has a bad string chunk');
      parts.push(this.take(this.arg(first & 31)));
    }
    return Buffer.concat(parts);
  }

  private text(b: Uint8Array): string {
    try {
      return utf8.decode(b);
    } catch {
      throw new QcopError('EPROTO', 'control payload has text that is not UTF-8');
    }
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

/** Decodes a control payload: one CBOR item, nothing after it; `{}` for an empty payload or a non-map. */
export function decodeControl(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.length === 0) return {};
  const r = new Reader(bytes);
  const value = r.item(0);
  if (value === BREAK) throw new QcopError('EPROTO', 'control payload has a stray break');
  if (r.at !== bytes.length) throw new QcopError('EPROTO', `control payload has ${bytes.length - r.at} bytes after its item`);
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array) ? (value as Record<string, unknown>) : {};
}
