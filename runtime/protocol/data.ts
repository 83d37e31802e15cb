// Message data as CBOR (SPEC §1): one encoder configuration shared by every sender and receiver, in the dialect of cbor.ts.
import { Decoder, Encoder } from 'cbor-x';
import { Major, headArg, headBytes } from './cbor.js';
import { QcopError } from './errors.js';

// Plain CBOR a C client can read: no cbor-x record extension, byte strings untagged.
const cbor = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true, pack: false });
// A separate Decoder has no `structures`: record definitions in one payload cannot leak into the next.
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

const EMPTY = Buffer.alloc(0);

/** Encodes message data; `undefined` (no data) is the empty payload (PROTOCOL 3.4). */
export function encodeData(value: unknown): Buffer {
  if (value === undefined) return EMPTY;
  try {
    return cbor.encode(value);
  } catch (err) {
    // A function, a symbol, a cycle...: a bad argument of the caller's, refused before anything is sent (PROTOCOL 7.1).
    throw new QcopError('EINVAL', `the data cannot be encoded as CBOR: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Decodes a payload; the empty payload is `undefined`. Byte strings in the result point into
 * `bytes` unless `copy` is set (needed when `bytes` is memory that will be reused). EPROTO for a
 * payload that is not one item of the dialect (cbor.ts).
 */
export function decodeData(bytes: Uint8Array, copy = false): unknown {
  if (bytes.length === 0) return undefined;
  const b0 = bytes[0]!;
  // Fast paths, the same values cbor-x returns: a whole byte string, a small integer, a simple value.
  if (b0 >> 5 === Major.Bytes) {
    const at = headBytes(b0);
    if (at !== 0 && at <= bytes.length) {
      const n = headArg(bytes, 0, at);
      if (typeof n === 'number' && at + n === bytes.length) {
        const view = Buffer.from(bytes.buffer, bytes.byteOffset + at, n);
        return copy ? Buffer.from(view) : view;
      }
    }
  } else if (bytes.length === 1) {
    if (b0 < 0x18) return b0;
    if (b0 >= 0x20 && b0 < 0x38) return -1 - (b0 - 0x20);
    if (b0 >= 0xf4 && b0 <= 0xf7) return SIMPLE[b0 - 0xf4];
  }
  try {
    return decoder.decode(copy ? Buffer.from(bytes) : bytes);
  } catch (err) {
    // cbor-x's own words (or the stack's, for nesting too deep) say what is wrong.
    throw new QcopError('EPROTO', `message data are not one CBOR item of the wire's dialect: ${(err as Error).message}`, { cause: err });
  }
}

const SIMPLE = [false, true, null, undefined] as const;

