// One connection's outbound queue: this tick's batch, the writes its stream still holds, and the memory they really take.
import type { Duplex } from 'node:stream';
import { BUFFER_OVERHEAD } from './budget.js';

/** Where a connection's queued bytes are counted: the broker's memory budget, and its user's quota (SPEC §8, §9). */
export interface QueueAccount {
  queued: number;
}

/** A tick's batch up to this size is copied into one buffer and written once. */
const BATCH_CONCAT_BYTES = 256 * 1024;

/** A write the stream has not called back yet: the memory blocks behind it, and what it was counted as. */
interface Pending {
  blocks: number;
  cost: number;
}

/**
 * Counts what is queued as the memory it keeps alive (SPEC §2: a small frame must not pin a large
 * read buffer). A frame in this tick's batch counts its length (the chunk it views is being read
 * anyway). A write the stream keeps (one the OS did not take at once) counts the whole memory
 * block behind each buffer plus BUFFER_OVERHEAD, until the stream calls it back. So what is
 * written is first made compact: a frame viewing a much larger block (a 64-byte message in a
 * 64 KiB read) is copied into memory of its own size, and a batch is joined into such memory, not
 * into a slice of Node's shared 8 KiB pool. That copy goes with a stream write, which costs far
 * more; a frame that has its block to itself, or a batch above 256 KiB, is written as it is.
 */
export class Outbound {
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private inFlight = 0;
  private inFlightBlocks = 0;
  private pending: Pending[] = [];
  private first = 0;
  private closed = false;
  private readonly written = (): void => this.done();

  constructor(
    private readonly stream: Duplex,
    private readonly budget: QueueAccount,
    /** Called when a write the stream kept is called back: the receiver made progress (backpressure, connection.ts). */
    private readonly progress: () => void = () => {},
  ) {}

  /** Bytes counted: the batch plus what the stream holds. */
  get bytes(): number {
    return this.batchBytes + this.inFlight;
  }

  /** True when nothing is waiting in this tick's batch. */
  get idle(): boolean {
    return this.batch.length === 0;
  }

  /** Adds a frame to this tick's batch. */
  add(frame: Buffer): void {
    if (this.closed) return;
    this.batch.push(frame);
    this.batchBytes += frame.length;
    this.budget.queued += frame.length;
  }

  /** Writes this tick's batch in one go. */
  flush(): void {
    const out = this.batch;
    if (out.length === 0 || this.closed) return;
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    this.budget.queued -= bytes;
    if (out.length === 1) {
      this.write(out[0]!);
    } else if (bytes <= BATCH_CONCAT_BYTES) {
      // One write per tick: a stream write costs more than copying small frames together, and a
      // receiver's backlog then holds few large chunks instead of many small ones.
      this.write(join(out, bytes));
    } else {
      const bufs = out.map(compact);
      this.stream.cork();
      for (let i = 0; i < bufs.length - 1; i++) this.stream.write(bufs[i]);
      this.stream.write(bufs[bufs.length - 1], this.written);
      this.stream.uncork();
      const blocks = blocksOf(bufs);
      this.track(blocks, blocks + bufs.length * BUFFER_OVERHEAD);
    }
  }

  /** Writes one buffer now, after the batch's order is no longer at stake (a flush, or a close). */
  write(buf: Buffer): void {
    if (this.closed) return;
    const data = compact(buf);
    this.stream.write(data, this.written);
    this.track(data.buffer.byteLength, data.buffer.byteLength + BUFFER_OVERHEAD);
  }

  /** Forgets everything: the connection is gone (later write callbacks change nothing). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget.queued -= this.batchBytes + this.inFlight;
    this.batch = [];
    this.batchBytes = 0;
    this.inFlight = 0;
    this.inFlightBlocks = 0;
    this.pending = [];
    this.first = 0;
  }

  /**
   * The memory blocks behind the writes the stream keeps, each block once, without the per-buffer
   * overhead, plus this tick's batch (for stats: at most `bytes`). Found from the buffers when they
   * are written, so stats never walk a queue.
   */
  heldBytes(): number {
    return this.batchBytes + this.inFlightBlocks;
  }

  /** Records a write for its callback; counted only when the stream kept it (a write the OS took at once holds nothing). */
  private track(blocks: number, cost: number): void {
    if (this.stream.writableLength === 0) blocks = cost = 0;
    this.pending.push({ blocks, cost });
    this.inFlight += cost;
    this.inFlightBlocks += blocks;
    this.budget.queued += cost;
  }

  /** A write was called back (written, or failed with the stream): streams call back in order. */
  private done(): void {
    if (this.closed) return;
    const p = this.pending[this.first];
    if (!p) return;
    this.pending[this.first++] = undefined as unknown as Pending;
    if (this.first === this.pending.length) {
      this.pending = [];
      this.first = 0;
    } else if (this.first >= 1024 && this.first * 2 >= this.pending.length) {
      this.pending = this.pending.slice(this.first);
      this.first = 0;
    }
    this.inFlight -= p.cost;
    this.inFlightBlocks -= p.blocks;
    this.budget.queued -= p.cost;
    this.progress();
  }
}

/** A buffer that views a block more than twice its size is copied into memory of its own size. */
function compact(b: Buffer): Buffer {
  if (b.buffer.byteLength <= 2 * b.length) return b;
  const own = Buffer.allocUnsafeSlow(b.length);
  b.copy(own);
  return own;
}

/** `Buffer.concat` into memory of exactly that size, not a slice of Node's shared 8 KiB pool. */
function join(bufs: Buffer[], bytes: number): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes);
  let at = 0;
  for (const b of bufs) at += b.copy(out, at);
  return out;
}

/** The memory blocks behind some buffers, each block once (views of one read share it). */
function blocksOf(bufs: Buffer[]): number {
  let n = 0;
  let last: ArrayBufferLike | null = null;
  const seen = new Set<ArrayBufferLike>();
  for (const b of bufs) {
    if (b.buffer === last || seen.has(b.buffer)) continue;
    last = b.buffer;
    seen.add(b.buffer);
    n += b.buffer.byteLength;
  }
  return n;
}
