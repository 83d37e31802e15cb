// Message data as JSON text for the CLI, losslessly: $bytes, $bigint, $date and $cbor forms (SPEC §4).
import { decodeData, encodeData } from '../protocol/data.js';
import { QcopError } from '../protocol/errors.js';

const TAGGED = new Set(['$bytes', '$bigint', '$date', '$cbor']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;
const ISO_8601 = /^[+-]?\d{4,6}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
// CBOR items the encoder cannot be asked for: undefined (simple value 23) and -0 (a half float).
const CBOR_UNDEFINED = { $cbor: '9w==' };
const CBOR_NEGATIVE_ZERO = { $cbor: '+YAA' };

function cborForm(value: unknown): { $cbor: string } {
  return { $cbor: encodeData(value).toString('base64') };
}

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Turns decoded data into a JSON-safe value that `fromJsonData` turns back into the same data. */
export function toJsonData(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Object.is(value, -0)) return CBOR_NEGATIVE_ZERO;
      return Number.isFinite(value) ? value : cborForm(value);
    case 'bigint':
      return { $bigint: value.toString() };
    case 'undefined':
      return CBOR_UNDEFINED;
    case 'object':
      break;
    default:
      return cborForm(value);
  }
  if (value === null) return null;
  if (value instanceof Uint8Array && value.constructor !== Uint8Array && !Buffer.isBuffer(value)) return cborForm(value);
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? cborForm(value) : { $date: value.toISOString() };
  if (Array.isArray(value)) {
    // Holes and undefined entries have no JSON form: keep the whole array exact.
    for (let i = 0; i < value.length; i++) if (value[i] === undefined) return cborForm(value);
    return value.map(toJsonData);
  }
  if (!isPlainObject(value)) return cborForm(value);
  const keys = Object.keys(value);
  // A real object that looks like one of our forms would be misread: carry it as CBOR.
  if (keys.length === 1 && TAGGED.has(keys[0]!)) return cborForm(value);
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    if (value[k] === undefined) return cborForm(value);
    out[k] = toJsonData(value[k]);
  }
  return out;
}

/** Turns JSON (as parsed) back into data, reading the tagged forms. Throws EINVAL on a malformed form. */
export function fromJsonData(json: unknown): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(fromJsonData);
  const obj = json as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1 && TAGGED.has(keys[0]!)) {
    const key = keys[0]!;
    const text = obj[key];
    if (typeof text !== 'string') throw new QcopError('EINVAL', `${key} needs a string`);
    switch (key) {
      case '$bytes':
        if (!BASE64.test(text)) throw new QcopError('EINVAL', '$bytes is not base64');
        return Buffer.from(text, 'base64');
      case '$bigint':
        if (!/^-?\d+$/.test(text)) throw new QcopError('EINVAL', '$bigint needs decimal digits');
        return BigInt(text);
      case '$date': {
        const d = new Date(text);
        if (!ISO_8601.test(text) || Number.isNaN(d.getTime())) throw new QcopError('EINVAL', '$date is not an ISO 8601 date');
        return d;
      }
      default:
        if (!BASE64.test(text) || text.length === 0) throw new QcopError('EINVAL', '$cbor is not base64');
        try {
          return decodeData(Buffer.from(text, 'base64'), true);
        } catch (err) {
          throw new QcopError('EINVAL', `$cbor does not hold one CBOR item: ${(err as Error).message}`);
        }
    }
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = fromJsonData(obj[k]);
  return out;
}

/** Parses the DATA argument of `qcop send`/`qcop call`. */
export function parseDataArgument(text: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new QcopError('EINVAL', `DATA is not JSON text: ${(err as Error).message}`);
  }
  return fromJsonData(json);
}
