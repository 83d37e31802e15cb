// Serial frames (docs/SERIAL.md): records with a CRC-32, COBS-encoded, each followed by 0x00. Pure: bytes in, frames out.
import { cobsDecode, cobsEncode } from './cobs.js';
import { crc32 } from '../../runtime/protocol/crc32.js';

/** SERIAL 3: record types. */
export const enum Type {
  Msg = 0x01,
  Hello = 0x02,
  /** SERIAL 8: a piece of one qcop client connection (serial line as a client transport). */
  Stream = 0x03,
}

/** SERIAL 8: STREAM flags. */
export const STREAM_OPEN = 0x01;
export const STREAM_END = 0x02;
/** SERIAL 8: decoded bytes of a STREAM record around its data (8 header + 4 CRC). */
export const STREAM_OVERHEAD = 12;

export type StreamRecord = { type: Type.Stream; flags: number; conn: number; data: Buffer };

/** SERIAL 3.1: the only format version. */
export const VERSION = 1;
/** SERIAL 3.3: HELLO flag asking the peer to answer with its own HELLO. */
export const HELLO_ANSWER = 0x01;
/** SERIAL 4: default largest decoded record (type byte to CRC included); small enough for a microcontroller. */
export const DEFAULT_MAX_RECORD = 4096;

export type Record_ =
  | { type: Type.Msg; channel: string; message: string; data: Buffer }
  | { type: Type.Hello; flags: number; maxRecord: number; name: string };

function seal(body: Buffer): Buffer {
  const rec = Buffer.allocUnsafe(body.length + 4);
  body.copy(rec);
  rec.writeUInt32LE(crc32(body), body.length);
  // SERIAL 2: a delimiter, COBS, a delimiter. The leading one costs a byte and keeps noise
  // that arrived since the previous frame from spoiling this one.
  const enc = cobsEncode(rec);
  const wire = Buffer.allocUnsafe(enc.length + 2);
  wire[0] = 0;
  enc.copy(wire, 1);
  wire[enc.length + 1] = 0;
  return wire;
}

/** A MSG record on the wire (SERIAL 3.2). Names must be 1–255 bytes (qcop checked them already). */
export function encodeMsg(channel: string, message: string, data: Uint8Array): Buffer {
  const c = Buffer.from(channel, 'utf8');
  const m = Buffer.from(message, 'utf8');
  const body = Buffer.allocUnsafe(4 + c.length + m.length + data.length);
  body[0] = Type.Msg;
  body[1] = VERSION;
  body[2] = c.length;
  body[3] = m.length;
  c.copy(body, 4);
  m.copy(body, 4 + c.length);
  body.set(data, 4 + c.length + m.length);
  return seal(body);
}

/** A HELLO record on the wire (SERIAL 3.3). */
export function encodeHello(flags: number, maxRecord: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8').subarray(0, 64);
  const body = Buffer.allocUnsafe(6 + n.length);
  body[0] = Type.Hello;
  body[1] = VERSION;
  body[2] = flags;
  body[3] = 0;
  body.writeUInt16LE(Math.min(maxRecord, 0xffff), 4);
  n.copy(body, 6);
  return seal(body);
}

/** A STREAM record on the wire (SERIAL 8): `data` must fit the peer's record limit less STREAM_OVERHEAD. */
export function encodeStream(flags: number, conn: number, data: Uint8Array): Buffer {
  const body = Buffer.allocUnsafe(8 + data.length);
  body[0] = Type.Stream;
  body[1] = VERSION;
  body[2] = flags;
  body[3] = 0;
  body.writeUInt32LE(conn >>> 0, 4);
  body.set(data, 8);
  return seal(body);
}

/** Decoded size of a MSG record, to check it against the peer's limit before sending. */
export function msgRecordSize(channel: string, message: string, dataLength: number): number {
  return 8 + Buffer.byteLength(channel) + Buffer.byteLength(message) + dataLength;
}

export interface ReaderCounts {
  records: number;
  /** Records whose CRC did not match (line noise, garbage). */
  crcErrors: number;
  /** Blocks that were not valid COBS, were too short, or had an unknown type/version. */
  malformed: number;
  /** Blocks longer than the limit, skipped up to the next delimiter. */
  oversize: number;
}

/** Splits a byte stream at 0x00, checks COBS and CRC, parses records; resynchronises at every delimiter. */
export class FrameReader {
  readonly counts: ReaderCounts = { records: 0, crcErrors: 0, malformed: 0, oversize: 0 };
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;
  private readonly maxEncoded: number;

  constructor(maxRecord = DEFAULT_MAX_RECORD) {
    this.maxEncoded = maxRecord + Math.ceil(maxRecord / 254) + 1;
  }

  push(chunk: Buffer, onRecord: (r: Record_) => void): void {
    this.feed(chunk, (body) => {
      const r = parse(body);
      if (!r) return false;
      onRecord(r);
      return true;
    });
  }

  /** Like push, for a line carrying one qcop connection (SERIAL 8): only STREAM records count; `onBad` hears of every record lost to CRC or malformation. */
  pushStream(chunk: Buffer, onRecord: (r: StreamRecord) => void, onBad: () => void): void {
    this.feed(chunk, (body) => {
      if (body[0] !== Type.Stream || body[1] !== VERSION || body.length < 8) return false;
      onRecord({ type: Type.Stream, flags: body[2]!, conn: body.readUInt32LE(4), data: Buffer.from(body.subarray(8)) });
      return true;
    }, onBad);
  }

  private feed(chunk: Buffer, onBody: (body: Buffer) => boolean, onBad?: () => void): void {
    let at = 0;
    while (at < chunk.length) {
      const z = chunk.indexOf(0, at);
      const end = z < 0 ? chunk.length : z;
      if (!this.skipping) {
        this.size += end - at;
        if (this.size > this.maxEncoded) {
          this.counts.oversize++;
          this.skipping = true;
          this.parts = [];
          onBad?.();
        } else if (end > at) {
          this.parts.push(chunk.subarray(at, end));
        }
      }
      if (z < 0) return;
      // A delimiter: a complete block (or the end of one being skipped).
      if (!this.skipping && this.size > 0) this.block(Buffer.concat(this.parts, this.size), onBody, onBad);
      this.parts = [];
      this.size = 0;
      this.skipping = false;
      at = z + 1;
    }
  }

  private block(enc: Buffer, onBody: (body: Buffer) => boolean, onBad?: () => void): void {
    const rec = cobsDecode(enc);
    if (!rec || rec.length < 6) {
      this.counts.malformed++;
      onBad?.();
      return;
    }
    const bodyEnd = rec.length - 4;
    if (crc32(rec, 0, bodyEnd) !== rec.readUInt32LE(bodyEnd)) {
      this.counts.crcErrors++;
      onBad?.();
      return;
    }
    if (!onBody(rec.subarray(0, bodyEnd))) {
      this.counts.malformed++;
      onBad?.();
      return;
    }
    this.counts.records++;
  }
}

function parse(body: Buffer): Record_ | null {
  if (body[1] !== VERSION) return null;
  if (body[0] === Type.Msg) {
    const c = body[2]!;
    const m = body[3]!;
    if (c === 0 || m === 0 || 4 + c + m > body.length) return null;
    const dec = new TextDecoder('utf-8', { fatal: true });
    try {
      const channel = dec.decode(body.subarray(4, 4 + c));
      const message = dec.decode(body.subarray(4 + c, 4 + c + m));
      return { type: Type.Msg, channel, message, data: Buffer.from(body.subarray(4 + c + m)) };
    } catch {
      return null;
    }
  }
  if (body[0] === Type.Hello && body.length >= 6) {
    return { type: Type.Hello, flags: body[2]!, maxRecord: body.readUInt16LE(4), name: body.subarray(6).toString('utf8') };
  }
  return null;
}
