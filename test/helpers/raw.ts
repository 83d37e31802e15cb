// The one raw protocol peer of the tests: frames built from raw field bytes, the hello, what the broker sends recorded and waited for.
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { PROTOCOL_VERSION } from '../../runtime/protocol/constants.js';
import { encodeControl } from '../../runtime/protocol/control.js';
import { FrameParser } from '../../runtime/protocol/parser.js';

/** Kinds as plain numbers (the runtime's const enums are not values at run time). */
export const K = {
  Hello: 0x01, Listen: 0x02, Unlisten: 0x03, Send: 0x04, Flush: 0x05, Query: 0x06, Watch: 0x07,
  Unwatch: 0x08, Call: 0x09, Reply: 0x0a, Stats: 0x0b, Pool: 0x0c, Release: 0x0d, Monitor: 0x10,
  Welcome: 0x41, Msg: 0x42, Result: 0x43, Error: 0x44, Event: 0x45, Lost: 0x46, Monitored: 0x4c,
} as const;

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
export function helloFrame(name: string, pid = 4242, version = 1, features: readonly string[] = ['lost', 'call', 'watch']): Buffer {
  return rawFrame(K.Hello, 0, pid, version, '', name, encodeControl({ features }));
}

/** A frame the broker sent; for an error frame `message` is the code and `payload` the reason. */
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
export class RawConn<S extends Duplex = net.Socket> {
  readonly frames: RawFrame[] = [];
  malformed: string | null = null;
  closed = false;
  bytesIn = 0;
  private readonly parser = new FrameParser(1 << 30);
  private waiters: Array<() => void> = [];
  private nextId = 100;

  /** Msg payloads are dropped (the fuzzer's memory stays bounded) unless `msgPayloads`. */
  constructor(readonly socket: S, msgPayloads = false) {
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
          payload: f.kind === K.Msg && !msgPayloads ? Buffer.alloc(0) : Buffer.from(f.raw.subarray(f.messageEnd)),
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

  static open(socketPath: string, msgPayloads = false): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(socketPath);
      s.once('connect', () => resolve(new RawConn(s, msgPayloads)));
      s.once('error', reject);
    });
  }

  /** A connection that said hello with `features` and got its welcome; it keeps msg payloads. */
  static async greeted(socketPath: string, features: readonly string[] = []): Promise<RawConn> {
    const conn = await RawConn.open(socketPath, true);
    await conn.hello(features);
    return conn;
  }

  /** Says hello as `raw` with this process's pid and waits for the welcome. */
  async hello(features: readonly string[] = []): Promise<void> {
    await this.write(helloFrame('raw', process.pid, PROTOCOL_VERSION, features));
    await this.next((f) => f.kind === K.Welcome);
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

  /** Takes the first frame matching `pred` out of `frames`, waiting up to `timeoutMs` for it. */
  async next(pred: (f: RawFrame) => boolean, timeoutMs = 3000): Promise<RawFrame> {
    let hit: RawFrame | undefined;
    const take = (): boolean => {
      const i = hit ? -1 : this.frames.findIndex(pred);
      if (i >= 0) hit = this.frames.splice(i, 1)[0];
      return hit !== undefined;
    };
    if (!(await this.until(take, timeoutMs))) throw new Error(`no matching frame in ${timeoutMs} ms (closed: ${this.closed})`);
    return hit!;
  }

  /** Sends a request with the next id of its own (from 100) and takes its result or error frame. */
  async request(kind: number, flags: number, aux: number, channel: string, message: string, payload?: Buffer): Promise<RawFrame> {
    const id = this.nextId++;
    await this.write(rawFrame(kind, flags, id, aux, channel, message, payload));
    return this.next((f) => (f.kind === K.Result || f.kind === K.Error) && f.id === id);
  }

  /** The next error frame: its code, request id and reason. */
  async errorCode(timeoutMs?: number): Promise<{ code: string; id: number; text: string }> {
    const f = await this.next((x) => x.kind === K.Error, timeoutMs);
    return { code: f.message, id: f.id, text: f.payload.toString() };
  }

  waitClosed(timeoutMs = 3000): Promise<boolean> {
    return this.until(() => this.closed, timeoutMs);
  }

  /** The first stream error the broker sent (Error frame with id 0). */
  get fatal(): RawFrame | undefined {
    return this.frames.find((f) => f.kind === K.Error && f.id === 0);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
