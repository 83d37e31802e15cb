// The broker-wide memory budget: what the broker holds for clients in queues, partly read frames and calls (SPEC §8).

/**
 * What one buffer the broker holds costs beyond its bytes: the Buffer and ArrayBuffer objects, the
 * stream's entry for a pending write, the allocator's share (measured on Node 20: about 480 bytes
 * for a 64-byte buffer waiting in a socket's queue).
 */
export const BUFFER_OVERHEAD = 512;

/** What one call in flight costs: its record, receiver sets, timer and channel name (measured: about 650 bytes). */
export const CALL_BYTES = 1024;

/**
 * Counts the memory held for clients against `maxMemoryBytes` (and partly read frames also
 * against `maxPartialBytes`). New work that does not fit is refused with ENOBUFS by the caller;
 * nothing already counted is ever dropped to make room.
 */
export class MemoryBudget {
  /** Bytes queued towards connections: this tick's batches and the writes their streams hold. */
  queued = 0;
  /** Bytes held for frames that arrive in pieces. */
  partial = 0;
  /** Requests refused with ENOBUFS. */
  refused = 0;
  private lastLog = 0;

  constructor(
    readonly limit: number,
    readonly partialLimit: number,
    /** Bytes held by calls in flight (asked when needed, not kept up to date). */
    private readonly callBytes: () => number,
  ) {}

  /** Everything counted. */
  get used(): number {
    return this.queued + this.partial + this.callBytes();
  }

  /** True when `bytes` more of new work fit under `maxMemoryBytes`. */
  fits(bytes: number): boolean {
    return this.used + bytes <= this.limit;
  }

  /** Takes `bytes` for a frame arriving in pieces when both budgets have room. */
  holdPartial(bytes: number): boolean {
    if (this.partial + bytes > this.partialLimit || !this.fits(bytes)) return false;
    this.partial += bytes;
    return true;
  }

  releasePartial(bytes: number): void {
    this.partial -= bytes;
  }

  /** Counts one refusal; true when it should be logged (the first one, then at most every 10 s). */
  refuse(now = Date.now()): boolean {
    this.refused++;
    if (now - this.lastLog < 10_000) return false;
    this.lastLog = now;
    return true;
  }

  /** The figures for `stats` (PROTOCOL 3.9 `memory`). */
  stats(): Record<string, number> {
    const calls = this.callBytes();
    return {
      countedBytes: this.queued + this.partial + calls,
      limitBytes: this.limit,
      queuedBytes: this.queued,
      partialBytes: this.partial,
      partialLimitBytes: this.partialLimit,
      callBytes: calls,
      refused: this.refused,
    };
  }
}
