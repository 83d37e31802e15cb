// Validation of channel names, patterns and message names (SPEC §1, PROTOCOL 4), on strings and on wire bytes.
import { MAX_NAME_BYTES } from './constants.js';
import { patternProblem } from './pattern.js';

// ignoreBOM: a leading U+FEFF is part of the name, not a byte-order mark to strip.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Why a name is invalid, or null when it is valid. `what` names the field in the text. */
export function channelProblem(name: string, what = 'channel'): string | null {
  if (typeof name !== 'string') return `${what} must be a string`;
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return `${what} is empty`;
  if (bytes > MAX_NAME_BYTES) return `${what} is ${bytes} bytes, longer than ${MAX_NAME_BYTES}`;
  let segmentStart = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) return `${what} contains a control character`;
    if (c >= 0xd800 && c <= 0xdfff) {
      const pair = c <= 0xdbff && i + 1 < name.length && (name.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      if (!pair) return `${what} contains a lone surrogate (not valid UTF-8)`;
      i++;
    }
    if (c === 0x2f) {
      if (segmentStart) return `${what} '${name}' has an empty segment`;
      segmentStart = true;
    } else {
      segmentStart = false;
    }
  }
  if (segmentStart) return `${what} '${name}' ends with '/'`;
  if (isPattern(name) && patternProblem(name) !== null) {
    return `${what} '${name}' is not a valid pattern (a set like [z-a] runs backwards)`;
  }
  return null;
}

/** True when a listener name is a pattern: it contains `*` (SPEC §1). */
export function isPattern(name: string): boolean {
  return name.includes('*');
}

/** Why a message name is invalid, or null: 1–255 bytes of UTF-8 without control characters. */
export function messageProblem(message: string): string | null {
  if (typeof message !== 'string') return 'message must be a string';
  const bytes = Buffer.byteLength(message, 'utf8');
  if (bytes === 0) return 'message is empty';
  if (bytes > MAX_NAME_BYTES) return `message is ${bytes} bytes, longer than ${MAX_NAME_BYTES}`;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) return 'message contains a control character';
    if (c >= 0xd800 && c <= 0xdfff) {
      const pair = c <= 0xdbff && i + 1 < message.length && (message.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      if (!pair) return 'message contains a lone surrogate (not valid UTF-8)';
      i++;
    }
  }
  return null;
}

/**
 * Decodes a name field from the wire; returns null when the bytes are not valid UTF-8.
 * ASCII, the common case, skips the strict decoder.
 */
export function decodeName(buf: Buffer, start: number, end: number): string | null {
  for (let i = start; i < end; i++) {
    if (buf[i]! >= 0x80) {
      try {
        return utf8.decode(buf.subarray(start, end));
      } catch {
        return null;
      }
    }
  }
  return buf.toString('latin1', start, end);
}

/** True when bytes [start, end) are printable ASCII (0x20–0x7e): a valid message name with no decoding (PROTOCOL 4.2). */
export function printableAscii(buf: Uint8Array, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b < 0x20 || b > 0x7e) return false;
  }
  return true;
}

/**
 * Remembers the last name field seen on one stream, so a run of frames on the same channel decodes
 * (and validates) it once: the bytes are compared in place, nothing is allocated on a hit.
 */
export class LastName {
  private bytes = Buffer.alloc(0);
  private name = '';

  /** The string for bytes [start, end) of `buf` if they equal the remembered ones, else null. */
  get(buf: Buffer, start: number, end: number): string | null {
    const n = end - start;
    const b = this.bytes;
    if (n !== b.length || n === 0) return null;
    // Names are short: a loop beats a call into Buffer#compare.
    if (n > 64) return buf.compare(b, 0, n, start, end) === 0 ? this.name : null;
    for (let i = 0; i < n; i++) if (buf[start + i] !== b[i]) return null;
    return this.name;
  }

  set(buf: Buffer, start: number, end: number, name: string): void {
    this.bytes = Buffer.from(buf.subarray(start, end));
    this.name = name;
  }
}
