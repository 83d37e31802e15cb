// The TCP pre-handshake (PROTOCOL 9): one text line each way before any qcop frame is accepted.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** PROTOCOL 9.2: longest preamble line, LF included. */
export const MAX_LINE = 512;
/** PROTOCOL 9.2: the preamble version this implementation speaks. */
export const PREAMBLE_VERSION = 1;
/** PROTOCOL 9.4: tokens are 16–256 visible ASCII characters. */
export const TOKEN_RE = /^[\x21-\x7e]{16,256}$/;

/** The line a client sends first (PROTOCOL 9.2); `-` stands for "no token". */
export function authLine(token: string | undefined): string {
  return `QCOP-AUTH ${PREAMBLE_VERSION} ${token ?? '-'}\n`;
}

export type AuthLine = { ok: true; version: number; token: string | undefined } | { ok: false; why: string };

/** Parses a client's line (without its LF). Pure: tested byte by byte. */
export function parseAuthLine(line: string): AuthLine {
  const m = /^QCOP-AUTH (\d{1,3}) (\S{1,256})$/.exec(line);
  if (!m) return { ok: false, why: 'the first line is not QCOP-AUTH <version> <token>' };
  const token = m[2] === '-' ? undefined : m[2];
  if (token !== undefined && !TOKEN_RE.test(token)) return { ok: false, why: 'malformed token' };
  return { ok: true, version: Number(m[1]), token };
}

/** The broker's answer (PROTOCOL 9.3). */
export type Verdict = { ok: true } | { ok: false; code: string; text: string };

export function verdictLine(v: Verdict): string {
  return v.ok ? 'QCOP-OK\n' : `QCOP-DENY ${v.code} ${v.text.replace(/[\r\n]/g, ' ')}\n`;
}

/** Parses the broker's answer line (without its LF). */
export function parseVerdict(line: string): Verdict {
  if (line === 'QCOP-OK') return { ok: true };
  const m = /^QCOP-DENY (E[A-Z0-9]{1,31}) ?(.*)$/.exec(line);
  if (m) return { ok: false, code: m[1]!, text: m[2] || 'refused' };
  return { ok: false, code: 'EPROTO', text: `unexpected answer '${line.slice(0, 60)}' (is this a qcop broker with TCP enabled?)` };
}

/** Compares tokens in constant time, whatever their lengths. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Reads one LF-terminated line from a fresh stream, then pauses it. Rejects on a line longer
 * than MAX_LINE, on close, or after `timeoutMs`. Bytes after the LF are returned, not lost.
 */
export function readLine(stream: Duplex, timeoutMs: number): Promise<{ line: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | null, value?: { line: string; rest: Buffer }) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('close', onClose);
      stream.off('error', onError);
      stream.pause();
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const lf = buf.indexOf(0x0a);
      if (lf >= 0 && lf < MAX_LINE) {
        return done(null, { line: buf.subarray(0, lf).toString('latin1').replace(/\r$/, ''), rest: buf.subarray(lf + 1) });
      }
      if (buf.length >= MAX_LINE) done(new Error(`preamble line longer than ${MAX_LINE} bytes`));
    };
    const onClose = () => done(new Error('connection closed during the preamble'));
    const onError = (err: Error) => done(err);
    const timer = setTimeout(() => done(new Error(`no preamble line within ${timeoutMs} ms`)), timeoutMs);
    stream.on('data', onData);
    stream.on('close', onClose);
    stream.on('error', onError);
  });
}
