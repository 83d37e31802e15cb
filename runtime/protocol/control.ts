// Control payloads (PROTOCOL 7.2): hello, welcome, flush, stats, pool. Their codec, on the heads and dialect of cbor.ts,
// so the broker never loads cbor-x (about 3 MiB of a daemon's memory) for a handful of maps.
import { HeadReader, INDEFINITE, MAX_DEPTH, Major, putHead } from './cbor.js';
import { QcopError } from './errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

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

const refuse = (why: string) => new QcopError('EINVAL', `a control payload ${why}`);

function write(w: Writer, v: unknown, level: number): void {
  if (level > MAX_DEPTH) throw refuse(`is nested deeper than ${MAX_DEPTH} levels`);
  if (v === null) return w.byte(0xf6);
  if (v === false) return w.byte(0xf4);
  if (v === true) return w.byte(0xf5);
  if (typeof v === 'number') {
    // As message data (cbor.ts): integers within 32 bits as integers, other numbers as float64.
    if (Number.isInteger(v) && v >= -0x100000000 && v < 0x100000000) return v >= 0 ? w.head(Major.Uint, v) : w.head(Major.Nint, -1 - v);
    return w.float(v);
  }
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    w.head(Major.Text, b.length);
    return w.bytes(b);
  }
  if (typeof v === 'bigint') throw refuse('carries integers as numbers: a bigint is refused, never narrowed');
  if (Array.isArray(v)) {
    w.head(Major.Array, v.length);
    for (const x of v) {
      if (x === undefined) throw refuse('array cannot hold undefined');
      write(w, x, level + 1);
    }
    return;
  }
  if (ArrayBuffer.isView(v)) throw refuse('carries no byte strings');
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    w.head(Major.Map, entries.length);
    for (const [k, x] of entries) {
      write(w, k, level + 1);
      write(w, x, level + 1);
    }
    return;
  }
  throw refuse(`cannot carry a ${typeof v}`);
}

/**
 * Encodes a control payload: a map with text keys of text, numbers, booleans, null, arrays and
 * maps; members that are undefined are left out. EINVAL for anything else (cbor.ts).
 */
export function encodeControl(value: unknown): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  const w = new Writer();
  write(w, value, 1);
  return w.done();
}

class Reader {
  private readonly r: HeadReader;

  constructor(bytes: Uint8Array) {
    this.r = new HeadReader(bytes, 'control payload');
  }

  item(level: number): unknown {
    const r = this.r;
    if (level > MAX_DEPTH) throw r.refuse(`is nested deeper than ${MAX_DEPTH} levels`);
    const n = r.head();
    const major = r.major;
    switch (major) {
      case Major.Uint:
      case Major.Nint:
        // An exact number or nothing: a bigint argument, or -2^53, is beyond ±(2^53 − 1).
        if (typeof n === 'bigint' || (major === Major.Nint && n === Number.MAX_SAFE_INTEGER)) {
          throw r.refuse(`has an integer beyond ±(2^53 − 1) (refused, never narrowed)`);
        }
        return major === Major.Uint ? n : -1 - n;
      case Major.Text:
        return this.text(r.take(n));
      case Major.Array: {
        const count = r.count(n, 1);
        const out: unknown[] = [];
        for (let i = 0; count === INDEFINITE ? !r.atBreak() : i < count; i++) out.push(this.item(level + 1));
        return out;
      }
      case Major.Map: {
        const count = r.count(n, 2);
        const out: Record<string, unknown> = {};
        for (let i = 0; count === INDEFINITE ? !r.atBreak() : i < count; i++) {
          const k = r.head();
          if (r.major !== Major.Text) throw r.refuse('has a map key that is not text');
          const key = this.text(r.take(k));
          // defineProperty: a key named __proto__ is an ordinary member, not the prototype.
          Object.defineProperty(out, key, { value: this.item(level + 1), enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      case Major.Simple: {
        const v = r.simple(n as number);
        if (v === undefined) throw r.refuse('has undefined (not a control value)');
        return v;
      }
      default:
        throw r.refuse(major === Major.Bytes ? 'has a byte string (not a control value)' : 'has a tag (not a control value)');
    }
  }

  end(): void {
    this.r.end();
  }

  private text(b: Uint8Array): string {
    try {
      return utf8.decode(b);
    } catch {
      throw this.r.refuse('has text that is not UTF-8');
    }
  }
}

/**
 * Decodes a control payload: one item of the shapes encodeControl writes, nothing after it; `{}`
 * for an empty payload or an item that is not a map (PROTOCOL 2.1). EPROTO for anything else (cbor.ts).
 */
export function decodeControl(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.length === 0) return {};
  const r = new Reader(bytes);
  const value = r.item(1);
  r.end();
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
