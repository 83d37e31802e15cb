// The records of the durable store's log (docs/DURABLE.md): encoding, decoding, torn-tail detection.
import { crc32 } from '../../protocol/crc32.js';

/** Every segment file starts with these 8 bytes (docs/DURABLE.md §2). */
export const SEGMENT_MAGIC = Buffer.from('QCOPLOG1', 'latin1');

/** Record header: body length u32 LE, CRC-32 of the body u32 LE (docs/DURABLE.md §3). */
export const RECORD_HEAD = 8;

/** A record body larger than this is corrupt (a message is at most a frame; 1 GiB is maxFrameBytes' top). */
export const MAX_RECORD_BODY = (1 << 30) + 1024;

export const enum RecordType {
  /** A stored message of a queued channel. */
  Msg = 1,
  /** A message consumed: every receiver acknowledged it, or it went to the dead letters. */
  Done = 2,
  /** A message's delivery count changed (it is delivered again after a crash or disconnect). */
  Count = 3,
  /** A retained value of a queued channel. */
  Retain = 4,
  /** A queued channel's retained value cleared. */
  Unretain = 5,
  /** Every message of a channel up to seq was delivered at least once (one record per delivery batch). */
  Delivered = 6,
}

export type Rec =
  | { type: RecordType.Msg; seq: number; deliveries: number; channel: string; message: string; data: Buffer }
  | { type: RecordType.Done; seq: number }
  | { type: RecordType.Count; seq: number; deliveries: number }
  | { type: RecordType.Retain; channel: string; message: string; data: Buffer }
  | { type: RecordType.Unretain; channel: string }
  | { type: RecordType.Delivered; seq: number; channel: string };

function putSeq(b: Buffer, at: number, seq: number): void {
  b.writeUInt32LE(seq % 0x1_0000_0000, at);
  b.writeUInt32LE(Math.floor(seq / 0x1_0000_0000), at + 4);
}

function getSeq(b: Buffer, at: number): number {
  return b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 0x1_0000_0000;
}

/**
 * The body of a record that names a message: `head` bytes (the type first, the lengths of channel and message
 * last), then channel, message and data.
 */
function named(type: RecordType, head: number, channel: string, message: string, data: Buffer): Buffer {
  const ch = Buffer.from(channel, 'utf8');
  const msg = Buffer.from(message, 'utf8');
  const body = Buffer.allocUnsafe(head + ch.length + msg.length + data.length);
  body[0] = type;
  body[head - 2] = ch.length;
  body[head - 1] = msg.length;
  ch.copy(body, head);
  msg.copy(body, head + ch.length);
  data.copy(body, head + ch.length + msg.length);
  return body;
}

/** One record, head included, ready to append. */
export function encodeRecord(r: Rec): Buffer {
  let body: Buffer;
  switch (r.type) {
    case RecordType.Msg:
      body = named(r.type, 12, r.channel, r.message, r.data);
      putSeq(body, 1, r.seq);
      body[9] = Math.min(r.deliveries, 255);
      break;
    case RecordType.Done:
      body = Buffer.allocUnsafe(9);
      body[0] = r.type;
      putSeq(body, 1, r.seq);
      break;
    case RecordType.Count:
      body = Buffer.allocUnsafe(10);
      body[0] = r.type;
      putSeq(body, 1, r.seq);
      body[9] = Math.min(r.deliveries, 255);
      break;
    case RecordType.Retain:
      body = named(r.type, 3, r.channel, r.message, r.data);
      break;
    case RecordType.Unretain: {
      const ch = Buffer.from(r.channel, 'utf8');
      body = Buffer.allocUnsafe(2 + ch.length);
      body[0] = r.type;
      body[1] = ch.length;
      ch.copy(body, 2);
      break;
    }
    case RecordType.Delivered: {
      const ch = Buffer.from(r.channel, 'utf8');
      body = Buffer.allocUnsafe(10 + ch.length);
      body[0] = r.type;
      putSeq(body, 1, r.seq);
      body[9] = ch.length;
      ch.copy(body, 10);
      break;
    }
  }
  const out = Buffer.allocUnsafe(RECORD_HEAD + body.length);
  out.writeUInt32LE(body.length, 0);
  out.writeUInt32LE(crc32(body), 4);
  body.copy(out, RECORD_HEAD);
  return out;
}

/** Decodes a checked body; null when its fields do not add up (a corrupt record). */
export function decodeBody(body: Buffer): Rec | null {
  const type = body[0];
  const n = body.length;
  if (type === RecordType.Msg) {
    if (n < 12 || 12 + body[10]! + body[11]! > n) return null;
    const chEnd = 12 + body[10]!;
    const msgEnd = chEnd + body[11]!;
    return {
      type, seq: getSeq(body, 1), deliveries: body[9]!, channel: body.toString('utf8', 12, chEnd),
      message: body.toString('utf8', chEnd, msgEnd), data: Buffer.from(body.subarray(msgEnd)),
    };
  }
  if (type === RecordType.Done) return n === 9 ? { type, seq: getSeq(body, 1) } : null;
  if (type === RecordType.Count) return n === 10 ? { type, seq: getSeq(body, 1), deliveries: body[9]! } : null;
  if (type === RecordType.Retain) {
    if (n < 3 || 3 + body[1]! + body[2]! > n) return null;
    const chEnd = 3 + body[1]!;
    const msgEnd = chEnd + body[2]!;
    return { type, channel: body.toString('utf8', 3, chEnd), message: body.toString('utf8', chEnd, msgEnd), data: Buffer.from(body.subarray(msgEnd)) };
  }
  if (type === RecordType.Unretain) {
    if (n < 2 || 2 + body[1]! !== n) return null;
    return { type, channel: body.toString('utf8', 2, n) };
  }
  if (type === RecordType.Delivered) {
    if (n < 10 || 10 + body[9]! !== n) return null;
    return { type, seq: getSeq(body, 1), channel: body.toString('utf8', 10, n) };
  }
  return null;
}

/** What reading one segment found: its records with their sizes, and where the good part ends. */
export interface Scan {
  records: Array<{ rec: Rec; bytes: number }>;
  /** Offset after the last good record. */
  goodEnd: number;
  /** Why reading stopped before the end of the file, if it did: a torn or corrupt record. */
  problem: string | null;
}

/** Reads the records of one segment's bytes; stops at the first record that is incomplete or fails its checksum. */
export function scanSegment(buf: Buffer): Scan {
  const records: Scan['records'] = [];
  if (buf.length < SEGMENT_MAGIC.length || !buf.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) {
    return { records, goodEnd: 0, problem: 'the segment does not start with QCOPLOG1' };
  }
  let at = SEGMENT_MAGIC.length;
  while (at < buf.length) {
    if (buf.length - at < RECORD_HEAD) return { records, goodEnd: at, problem: `torn record head at offset ${at}` };
    const len = buf.readUInt32LE(at);
    if (len < 1 || len > MAX_RECORD_BODY) return { records, goodEnd: at, problem: `impossible record length ${len} at offset ${at}` };
    if (buf.length - at - RECORD_HEAD < len) return { records, goodEnd: at, problem: `torn record at offset ${at} (${len} bytes announced, ${buf.length - at - RECORD_HEAD} present)` };
    const body = buf.subarray(at + RECORD_HEAD, at + RECORD_HEAD + len);
    if (crc32(body) !== buf.readUInt32LE(at + 4)) return { records, goodEnd: at, problem: `checksum mismatch at offset ${at}` };
    const rec = decodeBody(body);
    if (!rec) return { records, goodEnd: at, problem: `malformed record at offset ${at}` };
    records.push({ rec, bytes: RECORD_HEAD + len });
    at += RECORD_HEAD + len;
  }
  return { records, goodEnd: at, problem: null };
}
