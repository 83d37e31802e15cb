// MQTT payloads of qcop messages (docs/MQTT.md): `json` for dashboards and other MQTT clients, `cbor` between qcop boards.
import { QcopError } from '../../runtime/index.js';
import { fromJsonData, messageProblem, toJsonData } from '../../runtime/internal.js';
import { decodeData, encodedLikeSend } from '../shared/cbor.js';
import type { PayloadFormat } from './options.js';

/** The MQTT v5 user property that carries the qcop message name. */
export const MESSAGE_PROPERTY = 'qcop-message';
/** The message name given to an imported message that does not say one (an MQTT 3.1.1 client, mosquitto_pub without -D). */
export const DEFAULT_MESSAGE = 'mqtt';

export const CONTENT_TYPE: Record<PayloadFormat, string> = { json: 'application/json', cbor: 'application/cbor' };

/** One qcop message as an MQTT payload: `json` is the data as JSON text; `cbor` the CBOR array [message, data]. */
export function encodePayload(format: PayloadFormat, message: string, data: unknown, bytes: Uint8Array): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify(toJsonData(data)) ?? 'null', 'utf8');
  // A CBOR array of two items: the message name, then the data bytes exactly as the sender encoded them.
  const name = encodedLikeSend(message);
  const out = Buffer.allocUnsafe(1 + name.length + bytes.length);
  out[0] = 0x82;
  out.set(name, 1);
  out.set(bytes, 1 + name.length);
  return out;
}

/**
 * An MQTT payload as a qcop message. `json`: JSON text (the tagged forms of docs/MQTT.md), else
 * UTF-8 text as a string, else the bytes; the message name is `propertyName` or DEFAULT_MESSAGE.
 * `cbor`: exactly one CBOR array [message, data]. Throws EINVAL/EPROTO for what cannot be taken.
 */
export function decodePayload(format: PayloadFormat, payload: Buffer, propertyName: string | undefined): { message: string; data: unknown } {
  if (format === 'cbor') {
    const v = decodeData(payload);
    if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string') throw new QcopError('EPROTO', 'a cbor payload must be the CBOR array [message, data]');
    const why = messageProblem(v[0]);
    if (why) throw new QcopError('EINVAL', why);
    return { message: v[0], data: v[1] };
  }
  const message = propertyName ?? DEFAULT_MESSAGE;
  const why = messageProblem(message);
  if (why) throw new QcopError('EINVAL', `${MESSAGE_PROPERTY}: ${why}`);
  return { message, data: jsonData(payload) };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function jsonData(payload: Buffer): unknown {
  let text: string;
  try {
    text = UTF8.decode(payload);
  } catch {
    return Buffer.from(payload); // not text: the bytes themselves
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return text; // `mosquitto_pub -m hello`: the text itself
  }
  try {
    return fromJsonData(json);
  } catch (err) {
    if (err instanceof RangeError) throw new QcopError('EINVAL', 'JSON payload nested too deeply');
    throw err;
  }
}
