// Pure streaming frame parser: bytes in, frames or one fatal error out (PROTOCOL 1, 5).
import { HEADER_SIZE, Off } from './constants.js';
import type { Frame } from './frame.js';

export interface ParseError {
  code: 'EPROTO' | 'EMSGSIZE';
  message: string;
}

/**
 * Splits a byte stream into frames. After the first error it stops: the stream cannot be
 * trusted any more (PROTOCOL 5.1). A length is checked before the frame's buffer is allocated,
 * and a frame split over many chunks is copied into that one buffer as it arrives (linear time).
 */
export class FrameParser {
  // The length prefix of the next frame while fewer than 4 bytes of it have arrived.
  private readonly head = Buffer.alloc(4);
  private headFilled = 0;
  // The frame being assembled across chunks, allocated once its length is known and checked.
  private partial: Buffer | null = null;
  private partialFilled = 0;
  private failed = false;

  constructor(private readonly maxFrameBytes: number) {}

  /** Feeds a chunk; calls `onFrame` for each complete frame. Returns an error when the stream broke. */
  push(chunk: Buffer, onFrame: (f: Frame) => void): ParseError | null {
    if (this.failed) return { code: 'EPROTO', message: 'stream already failed' };
    let at = 0;
    if (this.headFilled > 0) {
      const n = Math.min(4 - this.headFilled, chunk.length);
      chunk.copy(this.head, this.headFilled, 0, n);
      this.headFilled += n;
      at = n;
      if (this.headFilled < 4) return null;
      const len = this.head.readUInt32LE(0);
      const problem = checkLength(len, this.maxFrameBytes);
      if (problem) return this.fail(problem);
      this.partial = Buffer.allocUnsafe(len);
      this.head.copy(this.partial, 0, 0, 4);
      this.partialFilled = 4;
      this.headFilled = 0;
    }
    if (this.partial) {
      const n = Math.min(this.partial.length - this.partialFilled, chunk.length - at);
      chunk.copy(this.partial, this.partialFilled, at, at + n);
      this.partialFilled += n;
      at += n;
      if (this.partialFilled < this.partial.length) return null;
      const whole = this.partial;
      this.partial = null;
      const err = this.emit(whole, onFrame);
      if (err || this.failed) return err;
    }
    while (chunk.length - at >= 4) {
      const len = chunk.readUInt32LE(at + Off.Length);
      const problem = checkLength(len, this.maxFrameBytes);
      if (problem) return this.fail(problem);
      if (chunk.length - at < len) {
        this.partial = Buffer.allocUnsafe(len);
        chunk.copy(this.partial, 0, at);
        this.partialFilled = chunk.length - at;
        return null;
      }
      const err = this.emit(chunk.subarray(at, at + len), onFrame);
      if (err || this.failed) return err;
      at += len;
    }
    if (at < chunk.length) {
      chunk.copy(this.head, 0, at);
      this.headFilled = chunk.length - at;
    }
    return null;
  }

  /** Stops parsing: later pushes deliver nothing (used when the owner closes the stream). */
  stop(): void {
    this.failed = true;
    this.partial = null;
    this.headFilled = 0;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.partial ? this.partialFilled : this.headFilled;
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
