// Building frames (PROTOCOL 1): fixed 16-byte header, channel, message, payload.
import { HEADER_SIZE, Off, type Kind } from './constants.js';

/** A parsed frame: header fields plus offsets into `raw`, the whole frame (PROTOCOL 1.2). */
export interface Frame {
  kind: number;
  flags: number;
  id: number;
  aux: number;
  /** The whole frame, length prefix included. */
  raw: Buffer;
  /** End offset of the channel field in `raw` (it starts at HEADER_SIZE). */
  channelEnd: number;
  /** End offset of the message field (it starts at `channelEnd`); the payload follows. */
  messageEnd: number;
}

const EMPTY = Buffer.alloc(0);

type Utf8Writable = Buffer & { utf8Write(s: string, offset: number, length: number): number };

/** Encodes one frame. Names must already be validated; they are at most 255 bytes each. */
export function encodeFrame(
  kind: Kind,
  flags: number,
  id: number,
  aux: number,
  channel: string,
  message: string,
  payload: Uint8Array = EMPTY,
): Buffer {
  const channelLen = channel.length === 0 ? 0 : Buffer.byteLength(channel, 'utf8');
  const messageLen = message.length === 0 ? 0 : Buffer.byteLength(message, 'utf8');
  const total = HEADER_SIZE + channelLen + messageLen + payload.length;
  const buf = Buffer.allocUnsafe(total);
  buf.writeUInt32LE(total, Off.Length);
  buf[Off.Kind] = kind;
  buf[Off.Flags] = flags;
  buf[Off.ChannelLen] = channelLen;
  buf[Off.MessageLen] = messageLen;
  buf.writeUInt32LE(id >>> 0, Off.Id);
  buf.writeUInt32LE(aux >>> 0, Off.Aux);
  let at = HEADER_SIZE;
  // utf8Write skips Buffer#write's argument parsing; it exists on every Node Buffer.
  if (channelLen) at += (buf as Utf8Writable).utf8Write(channel, at, channelLen);
  if (messageLen) at += (buf as Utf8Writable).utf8Write(message, at, messageLen);
  if (payload.length) buf.set(payload, at);
  return buf;
}

/** The channel field of a frame as bytes. */
export function channelBytes(f: Frame): Buffer {
  return f.raw.subarray(HEADER_SIZE, f.channelEnd);
}

/** The message field of a frame as bytes. */
export function messageBytes(f: Frame): Buffer {
  return f.raw.subarray(f.channelEnd, f.messageEnd);
}

/** The payload of a frame (a view, not a copy). */
export function payloadOf(f: Frame): Buffer {
  return f.raw.subarray(f.messageEnd);
}

/** Total payload length announced by the header (PROTOCOL 1.2). */
export function payloadLength(f: Frame): number {
  return f.raw.length - f.messageEnd;
}
