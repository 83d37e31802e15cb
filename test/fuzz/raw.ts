// Fuzz plumbing: a seeded PRNG, raw frame building from bytes, a raw socket that records what the broker answers.
import * as net from 'node:net';
import { encodeControl } from '../../runtime/protocol/control.js';
import { FrameParser } from '../../runtime/protocol/parser.js';

/** Kinds used by the fuzzer, as plain numbers (the runtime's const enums are not values at run time). */
export const K = {
  Hello: 0x01, Listen: 0x02, Unlisten: 0x03, Send: 0x04, Flush: 0x05, Query: 0x06, Watch: 0x07,
  Unwatch: 0x08, Call: 0x09, Reply: 0x0a, Stats: 0x0b, Pool: 0x0c, Release: 0x0d,
  Welcome: 0x41, Msg: 0x42, Result: 0x43, Error: 0x44, Event: 0x45, Lost: 0x46,
} as const;

/** Highest broker-to-client kind this test knows; anything above 0x40 up to this is accepted from the broker. */
export const MAX_BROKER_KIND = 0x4f;

/** mulberry32: small, fast, good enough to make inputs reproducible from a seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  u32(): number {
    return (this.int(0x10000) * 0x10000 + this.int(0x10000)) >>> 0;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** Builds a frame from raw field bytes, so names may be invalid UTF-8; lengths are taken from the fields. */
export function rawFrame(kind: number, flags: number, id: number, aux: number, channel: Buffer | string, message: Buffer | string, payload: Buffer = Buffer.alloc(0)): Buffer {
  const ch = typeof channel === 'string' ? Buffer.from(channel, 'utf8') : channel;
  const msg = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  if (ch.length > 255 || msg.length > 255) throw new Error('name field longer than 255 bytes');
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + ch.length + msg.length + payload.length, 0);
  h[4] = kind;
  h[5] = flags;
  h[6] = ch.length;
  h[7] = msg.length;
  h.writeUInt32LE(id >>> 0, 8);
  h.writeUInt32LE(aux >>> 0, 12);
  return Buffer.concat([h, ch, msg, payload]);
}

/** A well-formed hello (PROTOCOL 2.1). */
export function helloFrame(name: string, pid = 4242, version = 1, features = ['lost', 'call', 'watch']): Buffer {
  return rawFrame(K.Hello, 0, pid, version, '', name, encodeControl({ features }));
}

export interface RawFrame {
  kind: number;
  flags: number;
  id: number;
  aux: number;
  channel: Buffer;
  message: string;
  payload: Buffer;
}

/** A raw connection: writes bytes, parses and keeps what the broker sends, notes how it ended. */
export class RawConn {
  readonly frames: RawFrame[] = [];
  malformed: string | null = null;
  closed = false;
  bytesIn = 0;
  private readonly parser = new FrameParser(1 << 30);
  private waiters: Array<() => void> = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      const err = this.parser.push(chunk, (f) => {
        this.frames.push({
          kind: f.kind,
          flags: f.flags,
          id: f.id,
          aux: f.aux,
          channel: Buffer.from(f.raw.subarray(16, f.channelEnd)),
          message: f.raw.toString('utf8', f.channelEnd, f.messageEnd),
          payload: f.kind === K.Msg ? Buffer.alloc(0) : Buffer.from(f.raw.subarray(f.messageEnd)),
        });
      });
      if (err && !this.malformed) this.malformed = `${err.code}: ${err.message}`;
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static open(socketPath: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(socketPath);
      s.once('connect', () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  /** Writes `data` in the given chunk sizes, waiting for the socket to drain; `drip` yields between writes. */
  async write(data: Buffer, chunkSizes: () => number = () => data.length, drip = false): Promise<void> {
    for (let at = 0; at < data.length && !this.socket.destroyed; ) {
      const n = Math.max(1, Math.min(chunkSizes(), data.length - at));
      const ok = this.socket.write(data.subarray(at, at + n));
      at += n;
      if (!ok) await new Promise<void>((r) => {
        const done = () => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          r();
        };
        this.socket.once('drain', done);
        this.socket.once('close', done);
      });
      else if (drip) await new Promise((r) => setImmediate(r));
    }
  }

  /** Resolves when `cond` holds (checked on every inbound chunk and at close) or after `ms`; returns whether it held. */
  async until(cond: () => boolean, ms: number): Promise<boolean> {
    if (cond()) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(cond());
      }, ms);
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(true);
      };
      this.waiters.push(check);
    });
  }

  /** The first stream error the broker sent (Error frame with id 0). */
  get fatal(): RawFrame | undefined {
    return this.frames.find((f) => f.kind === K.Error && f.id === 0);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
