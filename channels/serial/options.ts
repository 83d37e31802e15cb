// Checks the serial carrier's options (`serial: [...]` in the broker config) once, at start.
import { QcopError } from '../../runtime/index.js';
import { DEFAULT_MAX_RECORD } from './frame.js';

export interface SerialLinkOptions {
  /** Device path, e.g. /dev/ttyUSB0 or /dev/serial/by-id/... */
  device: string;
  /** Line speed (default 115200); writes are paced to it. */
  baud: number;
  export: string[];
  import: string[];
  /** Bytes waiting for the line before messages are dropped and counted (default 16 KiB, about 1.4 s at 115200). */
  maxBufferedBytes: number;
  /** Largest decoded record accepted and sent (default 4096; SERIAL 4). */
  maxRecordBytes: number;
  /** Pause between attempts to open a missing or busy device (default 1000 ms). */
  retryMs: number;
}

const bad = (what: string): never => {
  throw new QcopError('EINVAL', what);
};

export function serialOptions(o: Record<string, unknown>, i: number): SerialLinkOptions {
  const at = `serial[${i}]`;
  if (!o || typeof o !== 'object') bad(`${at} must be an object`);
  const known = new Set(['device', 'baud', 'export', 'import', 'maxBufferedBytes', 'maxRecordBytes', 'retryMs']);
  for (const k of Object.keys(o)) if (!known.has(k)) bad(`${at}: unknown option '${k}'`);
  if (typeof o.device !== 'string' || o.device === '') bad(`${at}.device must be a device path`);
  const int = (key: string, def: number, min: number, max: number): number => {
    const v = o[key] ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`${at}.${key} must be an integer from ${min} to ${max}`);
    return v as number;
  };
  const list = (key: string): string[] => {
    const v = o[key] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) bad(`${at}.${key} must be a list of channel names or patterns`);
    return v as string[];
  };
  const out: SerialLinkOptions = {
    device: o.device as string, baud: int('baud', 115200, 50, 4_000_000), export: list('export'), import: list('import'),
    maxBufferedBytes: int('maxBufferedBytes', 16 * 1024, 1024, 1 << 26), maxRecordBytes: int('maxRecordBytes', DEFAULT_MAX_RECORD, 64, 0xffff),
    retryMs: int('retryMs', 1000, 20, 60_000),
  };
  if (out.export.length + out.import.length === 0) bad(`${at} (${out.device}) exports and imports nothing`);
  return out;
}
