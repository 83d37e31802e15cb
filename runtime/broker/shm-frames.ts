// The two msg frames the broker writes for a large message (PROTOCOL 8.3, 8.6): a descriptor, or the bytes inline.
import { Flag, Kind, Off } from '../protocol/constants.js';
import { msgDescriptorBytes, writeMsgDescriptor } from '../protocol/shm-descriptor.js';
import type { Frame } from '../protocol/frame.js';

/** A msg frame of `body` more bytes after the sender's header and names, with its flags, sequence and sender. */
function msgAfterNames(f: Frame, body: number, flags: number, seq: number, senderId: number): Buffer {
  const out = Buffer.allocUnsafe(f.messageEnd + body);
  f.raw.copy(out, 0, 0, f.messageEnd);
  out.writeUInt32LE(out.length, Off.Length);
  out[Off.Kind] = Kind.Msg;
  out[Off.Flags] = flags;
  out.writeUInt32LE(seq, Off.Id);
  out.writeUInt32LE(senderId, Off.Aux);
  return out;
}

/** Msg|Shm: the sender's header and names, then token, offset, length, segment size, segment name. */
export function describedMsg(f: Frame, token: number, offset: number, length: number, segment: { name: Buffer; seg: { size: number } }, senderId: number, seq: number): Buffer {
  const out = msgAfterNames(f, msgDescriptorBytes(segment.name), Flag.Shm, seq, senderId);
  writeMsgDescriptor(out, f.messageEnd, token, offset, length, segment.seg.size, segment.name);
  return out;
}

/** A plain Msg carrying the bytes (PROTOCOL 8.6): the one place the broker reads a slot. */
export function inlineMsg(f: Frame, bytes: Buffer, seq: number, senderId: number): Buffer {
  const out = msgAfterNames(f, bytes.length, 0, seq, senderId);
  bytes.copy(out, f.messageEnd);
  return out;
}
