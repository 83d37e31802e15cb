// A serial line as a client transport (docs/SERIAL.md §8): the qcop byte stream cut into STREAM records, CRC-checked.
import { randomInt } from 'node:crypto';
import { Duplex } from 'node:stream';
import { DEFAULT_MAX_RECORD, FrameReader, STREAM_END, STREAM_OPEN, STREAM_OVERHEAD, encodeStream, type StreamRecord } from './frame.js';

/** The bytes a line writes to: a serialport SerialPort, a stream on a pty, any byte Duplex. */
export type ByteSink = Pick<Duplex, 'write' | 'once' | 'off'> & { destroyed?: boolean; writable?: boolean };

const EMPTY = Buffer.alloc(0);

/**
 * One serial device carrying one qcop connection at a time. The client side calls `open()` for
 * each connection; the broker side is handed a stream by `onOpen` whenever a peer opens one (a
 * newer OPEN replaces the current connection: the client that sent it has given up on the old one).
 */
export class SerialLine {
  readonly reader = new FrameReader(DEFAULT_MAX_RECORD);
  /** Records of another (earlier) connection, dropped. */
  stale = 0;
  current: SerialStream | null = null;

  /** Connections closed because their peer sent more than `maxHeldBytes` while the broker held them. */
  overflows = 0;

  /**
   * `maxHeldBytes` (broker side): what a connection may buffer while the broker does not read it
   * (backpressure, SPEC §2). A line has no flow control, so the peer keeps sending; past this the
   * connection is closed (counted, logged by the caller through `onOverflow`), as a byte stream
   * cannot drop part of itself. The client sees a disconnection with its unconfirmed count.
   */
  constructor(
    readonly sink: ByteSink,
    private readonly onOpen?: (s: SerialStream) => void,
    readonly maxHeldBytes = Infinity,
    private readonly onOverflow?: (s: SerialStream) => void,
  ) {}

  /** Client: starts a new connection with a fresh id. */
  open(): SerialStream {
    this.current?.destroy();
    const s = new SerialStream(this, randomInt(1, 0xffffffff));
    this.current = s;
    this.send(encodeStream(STREAM_OPEN, s.conn, EMPTY));
    return s;
  }

  /** Broker: tells the peer that every earlier connection is over (sent when the device opens). */
  reset(): void {
    this.send(encodeStream(STREAM_END, 0, EMPTY));
  }

  /** Bytes read from the device. */
  input(chunk: Buffer): void {
    this.reader.pushStream(chunk, (r) => this.record(r), () => this.lost());
  }

  /** The device went away: the connection on it is gone. */
  down(why: string): void {
    const s = this.current;
    this.current = null;
    s?.destroy(new Error(why));
  }

  send(wire: Buffer, cb?: () => void): void {
    if (this.sink.destroyed || this.sink.writable === false) return void cb?.();
    if (this.sink.write(wire) || !cb) return void cb?.();
    this.sink.once('drain', cb);
  }

  private record(r: StreamRecord): void {
    const s = this.current;
    if (r.flags & STREAM_OPEN && this.onOpen) {
      this.current = null;
      s?.destroy(new Error('the peer opened a new connection'));
      const n = new SerialStream(this, r.conn);
      this.current = n;
      this.onOpen(n);
      if (r.data.length > 0) this.deliver(n, r.data);
      return;
    }
    const reset = r.conn === 0 && (r.flags & STREAM_END) !== 0;
    // A reset the broker sent when it opened the device can still be in the pty or adapter when
    // we open a new connection: before the broker has said anything on ours, it may predate our
    // OPEN, so it is stale. (If the broker really restarted after our OPEN, the handshake times out
    // and the client dials again.)
    if (!s || (r.conn !== s.conn && !reset) || (reset && !this.onOpen && !s.heard)) {
      this.stale++;
      return;
    }
    if (r.conn === s.conn) s.heard = true;
    if (r.data.length > 0 && !this.deliver(s, r.data)) return;
    if (r.flags & STREAM_END) {
      s.peerEnded = true;
      this.current = null;
      s.push(null);
    }
  }

  /** Hands bytes to the connection; false when that took it past `maxHeldBytes` and it was closed. */
  private deliver(s: SerialStream, data: Buffer): boolean {
    s.push(data);
    if (s.readableLength <= this.maxHeldBytes) return true;
    this.overflows++;
    this.current = null;
    s.destroy(new Error(`the peer sent more than ${this.maxHeldBytes} bytes while the broker held the connection back`));
    this.onOverflow?.(s);
    return false;
  }

  /** A record failed its CRC (or was malformed): a byte range is missing, the qcop stream cannot be trusted. */
  private lost(): void {
    const s = this.current;
    if (!s) return;
    this.current = null;
    s.destroy(new Error('serial line noise: a record failed its CRC check'));
  }
}

/** The qcop byte stream of one connection over a SerialLine. */
export class SerialStream extends Duplex {
  peerEnded = false;
  /** A record of this connection has arrived from the peer. */
  heard = false;
  private endSent = false;

  constructor(
    private readonly line: SerialLine,
    readonly conn: number,
  ) {
    super({ allowHalfOpen: false });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.line.current !== this) return cb(new Error('the serial connection was replaced'));
    const max = DEFAULT_MAX_RECORD - STREAM_OVERHEAD;
    for (let at = 0; at < chunk.length; at += max) {
      const last = at + max >= chunk.length;
      this.line.send(encodeStream(0, this.conn, chunk.subarray(at, at + max)), last ? () => cb() : undefined);
    }
    if (chunk.length === 0) cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sendEnd(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.line.current === this) this.line.current = null;
    this.sendEnd();
    cb(err);
  }

  private sendEnd(cb?: () => void): void {
    // Also after the peer's END: ours ends the peer's readable side, so both sides close.
    if (this.endSent) return void cb?.();
    this.endSent = true;
    this.line.send(encodeStream(STREAM_END, this.conn, EMPTY), cb);
  }
}
