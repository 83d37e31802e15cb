// Message data as carriers see it: decode bytes from another medium, and predict the bytes a client's send() will produce.
import { Decoder, Encoder } from 'cbor-x';

// The same configuration as runtime/protocol/data.ts (which is not public): plain CBOR, no records.
const codec = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true, pack: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Decodes message data; the empty payload is "no data". Throws on bytes that are not CBOR. */
export function decodeData(bytes: Uint8Array): unknown {
  return bytes.length === 0 ? undefined : decoder.decode(bytes);
}

/**
 * The bytes `client.send(channel, message, value)` puts on the wire. A link re-sends decoded
 * data, so a peer's non-canonical CBOR (a C client writing 42 in two bytes) comes back from the
 * broker re-encoded: echo suppression must expect these bytes, not the peer's.
 */
export function encodedLikeSend(value: unknown): Uint8Array {
  return value === undefined ? new Uint8Array(0) : codec.encode(value);
}
