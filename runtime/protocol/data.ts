// Message data as CBOR (SPEC §1): one encoder configuration shared by every sender and receiver.
import { Decoder, Encoder } from 'cbor-x';

// Plain CBOR a C client can read: no cbor-x record extension, byte strings untagged.
const cbor = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true, pack: false });
// A separate Decoder has no `structures`: record definitions in one payload cannot leak into the next.
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

const EMPTY = Buffer.alloc(0);

/** Encodes message data; `undefined` (no data) is the empty payload (PROTOCOL 3.4). */
export function encodeData(value: unknown): Buffer {
  if (value === undefined) return EMPTY;
  return cbor.encode(value);
}

/**
 * Decodes a payload; the empty payload is `undefined`. Byte strings in the result point into
 * `bytes` unless `copy` is set (needed when `bytes` is memory that will be reused).
 */
export function decodeData(bytes: Uint8Array, copy = false): unknown {
  if (bytes.length === 0) return undefined;
  const b0 = bytes[0]!;
  // Fast paths, the same values cbor-x returns: a whole byte string, a small integer, a simple value.
  if ((b0 & 0xe0) === 0x40 && b0 < 0x5b) {
    const at = b0 < 0x58 ? 1 : b0 === 0x58 ? 2 : b0 === 0x59 ? 3 : 5;
    const n = at === 1 ? b0 & 0x1f : at === 2 ? bytes[1]! : at === 3 ? (bytes[1]! << 8) | bytes[2]! : ((bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]!) >>> 0;
    if (at + n === bytes.length) {
      const view = Buffer.from(bytes.buffer, bytes.byteOffset + at, n);
      return copy ? Buffer.from(view) : view;
    }
  } else if (bytes.length === 1) {
    if (b0 < 0x18) return b0;
    if (b0 >= 0x20 && b0 < 0x38) return -1 - (b0 - 0x20);
    if (b0 >= 0xf4 && b0 <= 0xf7) return SIMPLE[b0 - 0xf4];
  }
  const input = copy ? Buffer.from(bytes) : bytes;
  return decoder.decode(input);
}

const SIMPLE = [false, true, null, undefined] as const;

