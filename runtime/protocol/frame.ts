// Building frames (PROTOCOL 1): fixed 16-byte header, channel, message, payload.
import { HEADER_SIZE, Off, type Kind } from './constants.js';
import { Major, headSize, putHead } from './cbor.js';

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

/** Byte length of a name given as a string or as its UTF-8 bytes. */
export const nameLength = (name: string | Uint8Array): number => (typeof name !== 'string' ? name.length : name.length === 0 ? 0 : Buffer.byteLength(name, 'utf8'));

function put32(buf: Buffer, at: number, v: number): void {
  buf[at] = v;
  buf[at + 1] = v >>> 8;
  buf[at + 2] = v >>> 16;
  buf[at + 3] = v >>> 24;
}

function putName(buf: Buffer, at: number, name: string | Uint8Array, len: number): number {
  if (len === 0) return at;
  // utf8Write skips Buffer#write's argument parsing; it exists on every Node Buffer.
  if (typeof name === 'string') return at + (buf as Utf8Writable).utf8Write(name, at, len);
  for (let i = 0; i < len; i++) buf[at + i] = name[i]!;
  return at + len;
}

/**
 * Encodes one frame. Names must already be validated; they are at most 255 bytes each, given as
 * strings or as their UTF-8 bytes (a sender's cache). With `asByteString` the payload is `payload`
 * as CBOR data, a byte string: head and bytes are written straight into the frame (what cbor-x
 * would produce, without its copy).
 */
export function encodeFrame(
  kind: Kind,
  flags: number,
  id: number,
  aux: number,
  channel: string | Uint8Array,
  message: string | Uint8Array,
  payload: Uint8Array = EMPTY,
  asByteString = false,
): Buffer {
  const channelLen = nameLength(channel);
  const messageLen = nameLength(message);
  const n = payload.length;
  const head = asByteString ? headSize(n) : 0;
  const total = HEADER_SIZE + channelLen + messageLen + head + n;
  const buf = Buffer.allocUnsafe(total);
  put32(buf, Off.Length, total);
  buf[Off.Kind] = kind;
  buf[Off.Flags] = flags;
  buf[Off.ChannelLen] = channelLen;
  buf[Off.MessageLen] = messageLen;
  put32(buf, Off.Id, id >>> 0);
  put32(buf, Off.Aux, aux >>> 0);
  let at = putName(buf, HEADER_SIZE, channel, channelLen);
  at = putName(buf, at, message, messageLen);
  if (asByteString) at = putHead(buf, at, Major.Bytes, n);
  if (n) buf.set(payload, at);
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
