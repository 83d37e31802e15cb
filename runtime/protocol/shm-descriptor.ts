// The two shared-memory descriptors of PROTOCOL 8.3, written and read in this one place: a sender's Send|Shm
// (slot, segment, offset, length) and the broker's Msg|Shm (token, offset, length, segment size, segment name).
import { MSG_DESCRIPTOR_BYTES, SEND_DESCRIPTOR_BYTES } from './constants.js';

/** A Send|Shm payload: which slot of which announced segment holds the data. */
export interface SendDescriptor { slot: number; segment: number; offset: number; length: number }

/** A Msg|Shm payload: the broker's token for the slot, where the data lie, and the segment to map. */
export interface MsgDescriptor { token: number; offset: number; length: number; size: number; name: string }

export function encodeSendDescriptor(d: SendDescriptor): Buffer {
  const b = Buffer.allocUnsafe(SEND_DESCRIPTOR_BYTES);
  b.writeUInt32LE(d.slot, 0);
  b.writeUInt32LE(d.segment, 4);
  b.writeUInt32LE(d.offset, 8);
  b.writeUInt32LE(d.length, 12);
  return b;
}

/** Null when the payload is not exactly one descriptor. */
export function decodeSendDescriptor(p: Uint8Array): SendDescriptor | null {
  if (p.length !== SEND_DESCRIPTOR_BYTES) return null;
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  return { slot: v.getUint32(0, true), segment: v.getUint32(4, true), offset: v.getUint32(8, true), length: v.getUint32(12, true) };
}

/** Bytes a Msg|Shm descriptor naming segment `name` takes. */
export const msgDescriptorBytes = (name: Uint8Array): number => MSG_DESCRIPTOR_BYTES + name.length;

/** Writes a Msg|Shm descriptor at `at` of `out` (room for msgDescriptorBytes(name)). */
export function writeMsgDescriptor(out: Buffer, at: number, token: number, offset: number, length: number, size: number, name: Uint8Array): void {
  at = out.writeUInt32LE(token, at);
  at = out.writeUInt32LE(offset, at);
  at = out.writeUInt32LE(length, at);
  at = out.writeUInt32LE(size, at);
  out.set(name, at);
}

/** Null when the payload is too short to name a segment. */
export function decodeMsgDescriptor(p: Buffer): MsgDescriptor | null {
  if (p.length <= MSG_DESCRIPTOR_BYTES) return null;
  return {
    token: p.readUInt32LE(0),
    offset: p.readUInt32LE(4),
    length: p.readUInt32LE(8),
    size: p.readUInt32LE(12),
    name: p.toString('utf8', MSG_DESCRIPTOR_BYTES),
  };
}
