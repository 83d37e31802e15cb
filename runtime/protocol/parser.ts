// Pure streaming frame parser: bytes in, frames or one fatal error out (PROTOCOL 1, 5).
import { HEADER_SIZE, Off } from './constants.js';
import type { Frame } from './frame.js';

export interface ParseError {
  code: 'EPROTO' | 'EMSGSIZE';
  message: string;
}

/**
 * Splits a byte stream into frames. After the first error it stops: the stream cannot be
 * trusted any more (PROTOCOL 5.1). Every length is checked before anything is allocated.
 */
export class FrameParser {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed = false;

  constructor(private readonly maxFrameBytes: number) {}

  /** Feeds a chunk; calls `onFrame` for each complete frame. Returns an error when the stream broke. */
  push(chunk: Buffer, onFrame: (f: Frame) => void): ParseError | null {
    if (this.failed) return { code: 'EPROTO', message: 'stream already failed' };
    let buf = chunk;
    if (this.pendingBytes > 0) {
      // Only join what the pending frame needs once its length is known and checked.
      const need = this.neededBytes(chunk);
      if (need instanceof Object) return this.fail(need);
      if (need > this.pendingBytes + chunk.length) {
        this.pending.push(chunk);
        this.pendingBytes += chunk.length;
        return null;
      }
      this.pending.push(chunk);
      buf = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
      this.pending = [];
      this.pendingBytes = 0;
    }
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32LE(at + Off.Length);
      const problem = checkLength(len, this.maxFrameBytes);
      if (problem) return this.fail(problem);
      if (buf.length - at < len) break;
      const raw = buf.subarray(at, at + len);
      const channelEnd = HEADER_SIZE + raw[Off.ChannelLen]!;
      const messageEnd = channelEnd + raw[Off.MessageLen]!;
      if (messageEnd > len) {
        return this.fail({ code: 'EPROTO', message: `name fields (${messageEnd - HEADER_SIZE} bytes) overrun the frame of ${len} bytes` });
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
      if (this.failed) return null;
      at += len;
    }
    if (at < buf.length) {
      const rest = buf.subarray(at);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
    return null;
  }

  /** Stops parsing: later pushes deliver nothing (used when the owner closes the stream). */
  stop(): void {
    this.failed = true;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.pendingBytes;
  }

  private neededBytes(chunk: Buffer): number | ParseError {
    if (this.pendingBytes + chunk.length < 4) return Infinity;
    const head = Buffer.alloc(4);
    let filled = 0;
    for (const part of [...this.pending, chunk]) {
      const n = Math.min(4 - filled, part.length);
      part.copy(head, filled, 0, n);
      filled += n;
      if (filled === 4) break;
    }
    const len = head.readUInt32LE(0);
    return checkLength(len, this.maxFrameBytes) ?? len;
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
