// TLS material: certificate files read once at start, and the identity a client certificate gives.
import * as fs from 'node:fs';
import type * as tls from 'node:tls';
import { QcopError } from '../../runtime/index.js';

/** Reads a PEM file; a value that already is PEM text is returned as it is. */
export function pem(value: string | Buffer | undefined, what: string): Buffer | undefined {
  if (value === undefined) return undefined;
  if (Buffer.isBuffer(value)) return value;
  if (value.includes('-----BEGIN')) return Buffer.from(value);
  try {
    return fs.readFileSync(value);
  } catch (err) {
    throw new QcopError('ENOENT', `cannot read ${what} ${value}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** "CN=alice" for a verified client certificate, or null when the peer showed none. */
export function peerIdentity(socket: tls.TLSSocket): string | null {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return null;
  const cn: unknown = cert.subject?.CN;
  return typeof cn === 'string' ? cn : Array.isArray(cn) ? cn.join(',') : null;
}

/** Client-side TLS errors mean "refused", not "no broker": the client must not keep retrying blindly. */
export function isTlsRefusal(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return (
    code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.includes('CERT') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || /alert|certificate/i.test(err.message)
  );
}
