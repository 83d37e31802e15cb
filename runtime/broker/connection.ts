// One client connection inside the broker: its state, its outbound queue and the slow-consumer policy.
import type { Duplex } from 'node:stream';
import { Kind, PROTOCOL_VERSION } from '../protocol/constants.js';
import { encodeFrame } from '../protocol/frame.js';
import { LastName } from '../protocol/names.js';
import { FrameParser } from '../protocol/parser.js';
import type { Watch } from './watches.js';

/** What a connection needs from the broker that owns it. */
export interface ConnectionHost {
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  readonly slowConsumer: 'drop' | 'disconnect';
  /** Called for every complete frame, in order. */
  onFrame(conn: Connection, frame: import('../protocol/frame.js').Frame): void;
  /** Called once when the connection is gone, whatever the reason. */
  onClose(conn: Connection): void;
  /** Schedules `conn.flushOut()` for the end of the current tick. */
  markDirty(conn: Connection): void;
  /** Counts a stream closed for a protocol violation. */
  countProtocolError(conn: Connection): void;
  /** Counts a message dropped for a slow receiver, or a slow receiver disconnected. */
  countSlow(conn: Connection, disconnected: boolean): void;
  log(level: 'error' | 'warn' | 'info' | 'debug', text: string): void;
}

export type ConnState = 'hello' | 'open' | 'closed';

/** A tick's batch up to this size is copied into one buffer and written once. */
const BATCH_CONCAT_BYTES = 256 * 1024;

export class Connection {
  state: ConnState = 'hello';
  name = '';
  pid = 0;
  version = PROTOCOL_VERSION;
  features: string[] = [];
  /** Listener names this connection holds. */
  readonly listening = new Set<string>();
  /** Watches by id. */
  readonly watches = new Map<number, Watch<Connection>>();
  /** Sends routed since the last flush, and how many of those reached nobody (SPEC §2 flush). */
  sent = 0;
  unrouted = 0;
  /** The channel of this connection's previous send, to skip decoding it again (handlers.ts). */
  readonly lastChannel = new LastName();
  /** Messages dropped towards this receiver since it was last told (PROTOCOL 3.14). */
  lost = 0;
  lostTotal = 0;
  private out: Buffer[] = [];
  private outBytes = 0;
  private readonly parser: FrameParser;
  private handshakeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly host: ConnectionHost,
    readonly stream: Duplex,
    readonly id: number,
    readonly transport: string,
    handshakeTimeoutMs: number,
  ) {
    this.parser = new FrameParser(host.maxFrameBytes);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('drain', () => this.onDrain());
    stream.on('error', (err) => host.log('debug', `connection ${id}: ${err.message}`));
    stream.on('close', () => this.closed());
    this.handshakeTimer = setTimeout(() => {
      if (this.state === 'hello') this.fatal('EPROTO', `no hello within ${handshakeTimeoutMs} ms`);
    }, handshakeTimeoutMs);
    this.handshakeTimer.unref?.();
  }

  /** Bytes waiting to reach this client: our batch plus the stream's own buffer. */
  get queuedBytes(): number {
    return this.outBytes + this.stream.writableLength;
  }

  /** Marks the handshake done. */
  opened(): void {
    this.state = 'open';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  /**
   * Queues routed traffic under the slow-consumer policy (SPEC §2): past `maxQueueBytes` the
   * frame is dropped for this receiver and counted, or the receiver is disconnected.
   */
  deliver(frame: Buffer): boolean {
    if (this.state !== 'open') return false;
    if (this.queuedBytes + frame.length > this.host.maxQueueBytes) {
      this.overflow();
      return false;
    }
    this.push(frame);
    return true;
  }

  /** Applies the slow-consumer policy to one message this receiver has no room for (also held shm slots, PROTOCOL 8.4). */
  overflow(): void {
    if (this.state !== 'open') return;
    if (this.host.slowConsumer === 'disconnect') {
      this.host.countSlow(this, true);
      this.host.log('warn', `connection ${this.id} (${this.name || 'unnamed'}, pid ${this.pid}) is too slow: disconnected`);
      this.stream.destroy();
      this.closed();
    } else {
      this.lost++;
      this.lostTotal++;
      this.host.countSlow(this, false);
      // Make sure a flush runs, so the receiver hears of the loss even if nothing else is queued.
      if (this.out.length === 0) this.host.markDirty(this);
    }
  }

  /** Tells the receiver now how many messages it lost (PROTOCOL 3.14), rather than at its next drain. */
  tellLost(): void {
    if (this.lost === 0 || this.state !== 'open') return;
    this.push(this.takeLost());
  }

  /** The Lost frame for what was dropped so far; the count starts again from zero. */
  private takeLost(): Buffer {
    const n = this.lost;
    this.lost = 0;
    return encodeFrame(Kind.Lost, 0, 0, n, '', '');
  }

  /** Queues a control frame (answers, events). Not dropped, but a client that lets them pile up far past the limit is closed. */
  push(frame: Buffer): void {
    if (this.state === 'closed') return;
    if (this.queuedBytes > 2 * this.host.maxQueueBytes + this.host.maxFrameBytes) {
      this.host.countSlow(this, true);
      this.host.log('warn', `connection ${this.id} does not read its answers: disconnected`);
      this.stream.destroy();
      this.closed();
      return;
    }
    if (this.out.length === 0) this.host.markDirty(this);
    this.out.push(frame);
    this.outBytes += frame.length;
  }

  /** Writes the batch of this tick in one go. */
  flushOut(): void {
    if (this.state === 'closed') return;
    const out = this.out;
    if (out.length > 0) {
      const bytes = this.outBytes;
      this.out = [];
      this.outBytes = 0;
      if (out.length === 1) {
        this.stream.write(out[0]);
      } else if (bytes <= BATCH_CONCAT_BYTES) {
        // One write per tick: a stream write costs more than copying small frames together, and a
        // receiver's backlog then holds few large chunks instead of many small ones.
        this.stream.write(Buffer.concat(out, bytes));
      } else {
        this.stream.cork();
        for (const b of out) this.stream.write(b);
        this.stream.uncork();
      }
    }
    // PROTOCOL 3.14: once the backlog has room again and no drain is pending, tell the receiver what it lost;
    // otherwise the stream's 'drain' does it.
    // Written at once, not pushed: this is the flush, and pushing would wait for another tick.
    if (this.lost > 0 && !this.stream.writableNeedDrain && this.queuedBytes < this.host.maxQueueBytes / 2) {
      this.stream.write(this.takeLost());
    }
  }

  /** Sends an error frame answering a request; the connection stays open (SPEC §2 errors in a request). */
  error(code: string, text: string, requestId: number, requestKind: number, channel = ''): void {
    this.push(encodeFrame(Kind.Error, 0, requestId, requestKind, channel, code, Buffer.from(text, 'utf8')));
  }

  /** Sends an error frame and closes: the stream can no longer be trusted (PROTOCOL 5.1). */
  fatal(code: string, text: string, requestKind = 0): void {
    if (this.state === 'closed') return;
    this.host.countProtocolError(this);
    this.host.log('info', `connection ${this.id} (${this.name || 'unnamed'}, pid ${this.pid}) closed: ${code} ${text}`);
    this.parser.stop();
    this.error(code, text, 0, requestKind);
    this.flushOut();
    this.stream.end();
    this.closed();
    // A peer that does not read must not keep the socket open.
    setTimeout(() => this.stream.destroy(), 1000).unref?.();
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    const err = this.parser.push(chunk, (f) => {
      if (this.state !== 'closed') this.host.onFrame(this, f);
    });
    if (err) this.fatal(err.code, err.message);
  }

  private onDrain(): void {
    this.tellLost();
  }

  private closed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.parser.stop();
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.out = [];
    this.outBytes = 0;
    this.host.onClose(this);
  }
}
