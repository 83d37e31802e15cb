// Message data as carriers see it: the one codec of runtime/protocol/data.ts, and the bytes a client's send() produces.
import { decodeData as decode, encodeData } from '../../runtime/protocol/data.js';

/** Decodes message data from another medium (a copy: the bytes may be reused); EPROTO for bytes that are not one CBOR item of the dialect. */
export function decodeData(bytes: Uint8Array): unknown {
  return decode(bytes, true);
}

/**
 * The bytes `client.send(channel, message, value)` puts on the wire. A link re-sends decoded
 * data, so a peer's non-canonical CBOR (a C client writing 42 in two bytes) comes back from the
 * broker re-encoded: echo suppression must expect these bytes, not the peer's.
 */
export function encodedLikeSend(value: unknown): Uint8Array {
  return encodeData(value);
}
