// The client's Outbox: every byte it accepted and the system has not taken yet, in one order, with one backpressure state.
import type { Duplex } from 'node:stream';
import { QcopError } from '../protocol/errors.js';
import type { Slot } from './pool.js';

/**
 * Data for the shared-memory pool: encoded, or (`bytes`) the caller's own bytes handed over with `transfer`,
 * whose CBOR head is written in front of them in the slot; `slot` when they already are in one (a loan).
 */
export interface BigSend { channel: string; message: string; id: number; payload: Uint8Array; slot?: Slot; bytes?: true }

/** One accepted write: a frame (with its request, if any), or large data that need a pool slot first. */
export interface Item<P> { frame?: Buffer; pending?: P; big?: BigSend }

/** Bytes an item holds in the client (a loan's are in the pool, bounded by it, and count nothing). */
export const itemBytes = (i: Item<unknown>): number => i.frame?.length ?? (i.big!.slot ? 0 : i.big!.payload.length);

/** Frames of one tick this large are written at once rather than at the end of the tick. */
const BATCH_BYTES = 64 * 1024;

/** What the Outbox needs from the rest of the client. */
export interface OutboxHost<P> {
  /** Puts large data in a pool slot and writes its descriptor (through `writeNow`); false when no slot is free now. */
  place(big: BigSend): boolean;
  /** The connection went away: a loan waiting here becomes a copy (its pool is unmapped). */
  unslot(big: BigSend): void;
  /** False when the request of a waiting item was settled meanwhile (a call that timed out): it is skipped. */
  live(pending: P): boolean;
  /** The request's frame reached a connection (it may or may not have reached the broker if that connection ends). */
  written(pending: P): void;
  /** True while the pool holds this sender back (SHM.md: a quarter of it waiting for slow receivers). */
  pressured(): boolean;
  drain(): void;
  reportError(err: Error): void;
}

/**
 * Order: a frame goes to the tick's batch, then to the stream (whose own buffer counts too). While
 * large data wait for a pool slot, every later item waits behind them (PROTOCOL 8.5); while
 * disconnected everything waits, up to the high-water mark, and past it `send` throws ENOBUFS
 * (SPEC §2 reconnect). Requests whose answers do not depend on order (pool announcements, releases,
 * re-registrations) go ahead of what waits, never ahead of what is already in the batch.
 *
 * Backpressure: `accepted()` after each send says false once the client holds its high-water mark,
 * waits behind a large send, or the pool is pressured; `'drain'` follows when none is true any more.
 *
 * Never lost silently: sends since the last flush are counted (`unconfirmed`); when the connection
 * ends that count is handed to the 'disconnected' event, and what waits here goes out on the next one.
 */
export class Outbox<P> {
  private stream: Duplex | null = null;
  private waiting: Array<Item<P>> = [];
  private waitingBytes = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private batchStream: Duplex | null = null;
  private needDrain = false;
  private closed = false;
  /** Sends accepted since the last confirmed flush. */
  unconfirmed = 0;
  /** Connections lost so far: a flush answered on a later connection than it was asked on confirms nothing of before. */
  connections = 0;

  constructor(private readonly host: OutboxHost<P>, private readonly hwm: number) {}

  /** True while connected. */
  get writable(): boolean {
    return this.stream !== null;
  }

  /** Bytes accepted and not yet handed to the operating system. */
  get bytes(): number {
    return this.stream ? this.stream.writableLength + this.batchBytes + this.waitingBytes : this.waitingBytes;
  }

  /** True while later writes wait behind large data that wait for a pool slot. */
  get holding(): boolean {
    return this.stream !== null && this.waiting.length > 0;
  }

  /** Bytes waiting (behind a large send, or for a connection). */
  get heldBytes(): number {
    return this.waitingBytes;
  }

  /** ENOBUFS when one more item of `bytes` would pass the high-water mark of what waits: checked before anything is taken. */
  checkRoom(bytes: number): void {
    if (this.closed) throw new QcopError('ECLOSED', 'the client is closed');
    if (this.stream) {
      if (this.waiting.length > 0 && this.waitingBytes >= this.hwm) {
        throw new QcopError('ENOBUFS', `the shared-memory pool is full and ${this.waitingBytes} bytes already wait for it (high-water mark ${this.hwm}); wait for 'drain'`);
      }
    } else if (this.waitingBytes + bytes > this.hwm) {
      throw new QcopError('ENOBUFS', `disconnected and ${this.waitingBytes} bytes are already buffered (high-water mark ${this.hwm})`);
    }
  }

  /** In order behind everything accepted before; false when it waits (for a slot, or for a connection). */
  enqueue(item: Item<P>, bounded = true): boolean {
    if (!this.stream && item.big?.slot) this.host.unslot(item.big);
    if (bounded) this.checkRoom(itemBytes(item));
    // Now, when nothing waits: a send that cannot go at all (ENOSPC, too large) throws to its caller.
    if (this.stream && this.waiting.length === 0 && this.place(item)) return true;
    this.waiting.push(item);
    this.waitingBytes += itemBytes(item);
    return false;
  }

  /** Ahead of what waits (never ahead of the batch): to the stream now, or to the backlog while disconnected. */
  writeNow(frame: Buffer, pending?: P): void {
    if (!this.stream) {
      this.enqueue({ frame, pending });
      return;
    }
    if (pending) this.host.written(pending);
    // Frames of one tick go out in one write: a stream write costs more than copying small frames.
    if (this.batchStream !== this.stream) {
      this.flushBatch();
      this.batchStream = this.stream;
      process.nextTick(() => this.flushBatch());
    }
    this.batch.push(frame);
    this.batchBytes += frame.length;
    // A sender that ignores send() === false still gets its bytes written before the batch grows far.
    if (this.batchBytes >= Math.max(BATCH_BYTES, 2 * this.hwm)) this.flushBatch();
  }

  /** Counts one accepted send; false (and 'drain' later) when the sender should wait. */
  accepted(placed: boolean): boolean {
    this.unconfirmed++;
    if (!placed && this.stream) {
      this.needDrain = true;
      return false;
    }
    if (this.bytes >= this.hwm || this.host.pressured()) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** The sender is told to wait without a send (a loan refused for want of a slot). */
  wait(): void {
    this.needDrain = true;
  }

  /** Writes waiting items in order while slots are free; then decides about 'drain'. */
  pump(): void {
    while (this.waiting.length > 0 && this.stream) {
      const item = this.waiting[0]!;
      let placed: boolean;
      try {
        placed = this.place(item);
      } catch (e) {
        this.host.reportError(e as Error); // ENOSPC and too large for a frame: this one message is not sent
        placed = true;
      }
      if (!placed) return;
      this.waiting.shift();
      this.waitingBytes -= itemBytes(item);
    }
    this.checkDrain();
  }

  /** 'drain' when a sender was told to wait and nothing holds it back any more. */
  checkDrain(): void {
    if (this.needDrain && !this.holding && this.bytes < this.hwm && !this.host.pressured()) {
      this.needDrain = false;
      this.host.drain();
    }
  }

  /** A handshake succeeded on `stream`: returns what waited while disconnected, for the caller to re-queue after its re-registrations. */
  attach(stream: Duplex): Array<Item<P>> {
    this.stream = stream;
    stream.on('drain', () => this.checkDrain());
    const backlog = this.waiting;
    this.waiting = [];
    this.waitingBytes = 0;
    return backlog;
  }

  /** The stream closed: returns the sends not confirmed by a flush. What waits here goes first on the next connection (PROTOCOL 8.7). */
  detach(stream: Duplex): number {
    if (this.stream === stream) this.stream = null;
    if (this.batchStream === stream) {
      // Never handed to the system: as lost as what the system had not sent yet (counted in `unconfirmed`).
      this.batchStream = null;
      this.batch = [];
      this.batchBytes = 0;
    }
    for (const item of this.waiting) if (item.big?.slot) this.host.unslot(item.big);
    this.waitingBytes = this.waiting.reduce((n, i) => n + itemBytes(i), 0);
    const unconfirmed = this.unconfirmed;
    this.unconfirmed = 0;
    this.connections++;
    return unconfirmed;
  }

  /** The client closes: the batch goes to the stream; what waits is forgotten. */
  close(): void {
    this.closed = true;
    this.flushBatch();
    this.waiting = [];
    this.waitingBytes = 0;
  }

  /** Writes the frames batched in this tick. */
  flushBatch(): void {
    const s = this.batchStream;
    const batch = this.batch;
    const bytes = this.batchBytes;
    this.batchStream = null;
    this.batch = [];
    this.batchBytes = 0;
    if (!s || s.destroyed || batch.length === 0) return;
    // The callback tells a waiting sender when its bytes reached the system, whatever the stream's own
    // high-water mark (a 'drain' event only follows a write that returned false).
    s.write(batch.length === 1 ? batch[0] : Buffer.concat(batch, bytes), this.afterWrite);
  }

  private readonly afterWrite = (): void => {
    if (this.needDrain) this.checkDrain();
  };

  /** Writes an item now; false when it is large data and no slot is free. A request settled meanwhile is skipped. */
  private place(item: Item<P>): boolean {
    if (item.big) return this.host.place(item.big);
    if (item.pending !== undefined && !this.host.live(item.pending)) return true;
    this.writeNow(item.frame!, item.pending);
    return true;
  }
}
