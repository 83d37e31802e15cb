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
  const input = copy ? Buffer.from(bytes) : bytes;
  return decoder.decode(input);
}

