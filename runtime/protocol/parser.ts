// Pure streaming frame parser: bytes in, frames or one fatal error out (PROTOCOL 1, 5).
import { HEADER_SIZE, Off } from './constants.js';
import type { Frame } from './frame.js';

export interface ParseError {
  code: 'EPROTO' | 'EMSGSIZE';
  message: string;
}

/** The header of a frame the parser refused to hold: enough to answer the request it carried. */
export interface FrameHead {
  kind: number;
  flags: number;
  id: number;
  aux: number;
  length: number;
}

/**
 * What a parser asks before it holds the bytes of a frame that arrives in pieces (SPEC §8: the
 * broker's budget for partly read frames). Frames complete within one chunk never ask.
 */
export interface PartialBudget {
  /** May the parser hold one more buffer of `bytes`? `false` refuses the frame. */
  hold(bytes: number): boolean;
  /** The parser let go of `bytes` in `buffers` buffers it had been allowed to hold. */
  release(bytes: number, buffers: number): void;
  /** A refused frame's header; the parser skips the rest of its bytes and goes on with the next frame. */
  refused(head: FrameHead): void;
}

/** An incomplete frame up to this length gets one buffer of its own size, filled as pieces arrive. */
const SMALL_FRAME = 4096;
/** A piece at least this long that fills at least half of its chunk's memory is kept as it is, not copied. */
const VIEW_MIN = 4096;
/** Smaller pieces are copied into buffers of at most this size (and at most the bytes received so far). */
const SCRATCH_MAX = 64 * 1024;

/**
 * Splits a byte stream into frames. After the first error it stops: the stream cannot be trusted
 * any more (PROTOCOL 5.1). A length is checked from its four bytes before anything is held for the
 * frame. A frame split over chunks is not given its full size on its header: its pieces are
 * gathered as they arrive (large pieces kept, small ones copied together) and joined once at the
 * end, so an incomplete frame holds at most about twice what was received plus 4 KiB, whatever
 * its header announced.
 */
export class FrameParser {
  // The first 16 bytes of an incomplete frame: the length, then the rest of the header.
  private readonly head = Buffer.alloc(HEADER_SIZE);
  private headFilled = 0;
  private len = 0;
  /** Bytes of the incomplete frame received so far, header included. */
  private got = 0;
  /** A small frame's own buffer; or, for a large one, its pieces after the header. */
  private whole: Buffer | null = null;
  private parts: Buffer[] = [];
  private scratch: Buffer | null = null;
  private scratchFilled = 0;
  private heldBytes = 0;
  private heldBuffers = 0;
  /** Bytes of a refused frame still to be skipped. */
  private skip = 0;
  private finished = 0;
  private failed = false;

  constructor(
    private maxFrameBytes: number,
    private readonly budget: PartialBudget | null = null,
  ) {}

  /** Changes the frame limit for the frames that follow (a client learns its broker's from the welcome). */
  setLimit(maxFrameBytes: number): void {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Feeds a chunk; calls `onFrame` for each complete frame. Returns an error when the stream broke. */
  push(chunk: Buffer, onFrame: (f: Frame) => void): ParseError | null {
    if (this.failed) return { code: 'EPROTO', message: 'stream already failed' };
    let at = 0;
    if (this.midFrame) {
      const next = this.continueFrame(chunk, 0, onFrame);
      if (typeof next !== 'number') return next;
      if (this.failed) return null;
      at = next;
    }
    while (chunk.length - at >= 4) {
      const len = chunk.readUInt32LE(at + Off.Length);
      const problem = checkLength(len, this.maxFrameBytes);
      if (problem) return this.fail(problem);
      if (chunk.length - at < len) break;
      const err = this.emit(chunk.subarray(at, at + len), onFrame);
      if (err || this.failed) return err;
      at += len;
    }
    if (at < chunk.length) {
      const next = this.continueFrame(chunk, at, onFrame);
      if (typeof next !== 'number') return next;
    }
    return null;
  }

  /** Stops parsing: later pushes deliver nothing (used when the owner closes the stream). */
  stop(): void {
    this.failed = true;
    this.reset();
  }

  /** Bytes received of the incomplete frame (0 between frames and while skipping a refused one). */
  get buffered(): number {
    return this.skip > 0 ? 0 : this.got;
  }

  /** True while a frame has started and not ended (received, refused and skipped, or failed). */
  get midFrame(): boolean {
    return this.got > 0 || this.skip > 0;
  }

  /** Frames ended so far, delivered or refused: tells one incomplete frame from the next. */
  get framesEnded(): number {
    return this.finished;
  }

  /** Memory held for the incomplete frame, as counted with the budget. */
  get held(): number {
    return this.heldBytes;
  }

  /** Takes the incomplete frame's bytes from `chunk[at..]`; returns where the next frame starts. */
  private continueFrame(chunk: Buffer, at: number, onFrame: (f: Frame) => void): number | ParseError {
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length - at);
      this.skip -= n;
      if (this.skip === 0) this.ended();
      return at + n;
    }
    if (this.headFilled < HEADER_SIZE) {
      const before = this.headFilled;
      const n = Math.min(HEADER_SIZE - before, chunk.length - at);
      chunk.copy(this.head, before, at, at + n);
      this.headFilled += n;
      this.got += n;
      at += n;
      if (before < 4 && this.headFilled >= 4) {
        this.len = this.head.readUInt32LE(Off.Length);
        const problem = checkLength(this.len, this.maxFrameBytes);
        if (problem) return this.fail(problem);
      }
      if (this.headFilled < HEADER_SIZE) return at;
      if (this.len === HEADER_SIZE) {
        const raw = Buffer.from(this.head);
        this.reset();
        this.ended();
        return this.emit(raw, onFrame) ?? at;
      }
      if (this.len <= SMALL_FRAME) {
        if (!this.take(this.len)) return this.refuse(chunk, at);
        this.whole = Buffer.allocUnsafeSlow(this.len);
        this.head.copy(this.whole, 0);
      }
    }
    const n = Math.min(this.len - this.got, chunk.length - at);
    if (n === 0) return at;
    if (this.whole) {
      chunk.copy(this.whole, this.got, at, at + n);
    } else if (!this.keep(chunk.subarray(at, at + n))) {
      return this.refuse(chunk, at);
    }
    this.got += n;
    at += n;
    if (this.got < this.len) return at;
    const raw = this.assemble();
    this.reset();
    this.ended();
    return this.emit(raw, onFrame) ?? at;
  }

  /** Holds one piece of a large frame: kept as it is when it is large and not a sliver of its chunk, else copied. */
  private keep(piece: Buffer): boolean {
    if (piece.length >= VIEW_MIN && piece.length * 2 >= piece.buffer.byteLength) {
      if (!this.take(piece.buffer.byteLength)) return false;
      this.sealScratch();
      this.parts.push(piece);
      return true;
    }
    let from = 0;
    while (from < piece.length) {
      if (!this.scratch || this.scratchFilled === this.scratch.length) {
        this.sealScratch();
        // At most the bytes received so far (so a held frame is at most about twice what arrived), and never past the frame.
        const size = Math.min(this.len - this.got - from, Math.max(VIEW_MIN, this.got + from), SCRATCH_MAX);
        if (!this.take(size)) return false;
        this.scratch = Buffer.allocUnsafeSlow(size);
        this.scratchFilled = 0;
      }
      const n = piece.copy(this.scratch, this.scratchFilled, from);
      this.scratchFilled += n;
      from += n;
    }
    return true;
  }

  private sealScratch(): void {
    if (this.scratch && this.scratchFilled > 0) this.parts.push(this.scratch.subarray(0, this.scratchFilled));
    this.scratch = null;
    this.scratchFilled = 0;
  }

  private assemble(): Buffer {
    if (this.whole) return this.whole;
    this.sealScratch();
    return Buffer.concat([this.head, ...this.parts], this.len);
  }

  private take(bytes: number): boolean {
    if (this.budget && !this.budget.hold(bytes)) return false;
    this.heldBytes += bytes;
    this.heldBuffers++;
    return true;
  }

  /** The budget said no: let go of the frame, tell the owner, skip its remaining bytes. */
  private refuse(chunk: Buffer, at: number): number {
    const h = this.head;
    const head: FrameHead = { kind: h[Off.Kind]!, flags: h[Off.Flags]!, id: h.readUInt32LE(Off.Id), aux: h.readUInt32LE(Off.Aux), length: this.len };
    const rest = this.len - this.got;
    this.reset();
    this.skip = rest;
    this.budget!.refused(head);
    if (this.failed) return chunk.length;
    return this.continueFrame(chunk, at, () => {}) as number;
  }

  /** Forgets the incomplete frame and gives back what it held. */
  private reset(): void {
    if (this.heldBuffers > 0) this.budget?.release(this.heldBytes, this.heldBuffers);
    this.heldBytes = 0;
    this.heldBuffers = 0;
    this.headFilled = 0;
    this.len = 0;
    this.got = 0;
    this.whole = null;
    this.parts = [];
    this.scratch = null;
    this.scratchFilled = 0;
    this.skip = 0;
  }

  private ended(): void {
    this.finished++;
  }

  private emit(raw: Buffer, onFrame: (f: Frame) => void): ParseError | null {
    const channelEnd = HEADER_SIZE + raw[Off.ChannelLen]!;
    const messageEnd = channelEnd + raw[Off.MessageLen]!;
    if (messageEnd > raw.length) {
      return this.fail({ code: 'EPROTO', message: `name fields (${messageEnd - HEADER_SIZE} bytes) overrun the frame of ${raw.length} bytes` });
    }
    onFrame({
      kind: raw[Off.Kind]!,
      flags: raw[Off.Flags]!,
      id: raw.readUInt32LE(Off.Id),
      aux: raw.readUInt32LE(Off.Aux),
      raw,
      channelEnd,
      messageEnd,
    });
    return null;
  }

  private fail(e: ParseError): ParseError {
    this.stop();
    return e;
  }
}

function checkLength(len: number, max: number): ParseError | null {
  if (len < HEADER_SIZE) return { code: 'EPROTO', message: `frame length ${len} is below the ${HEADER_SIZE}-byte header` };
  if (len > max) return { code: 'EMSGSIZE', message: `frame length ${len} exceeds the limit of ${max} bytes` };
  return null;
}
