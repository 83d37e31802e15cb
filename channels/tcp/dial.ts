// Client side of TCP/TLS: dial, run the preamble (PROTOCOL 9), hand the stream to the client library.
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { QcopError } from '../../runtime/index.js';
import { isLoopback, parseBrokerUrl } from './address.js';
import { readLocalToken } from './local-token.js';
import { authLine, parseVerdict, readLine } from './preamble.js';
import { isTlsRefusal, pem } from './tls.js';

/** Options of `connect({ url, transport })` for `tcp://` and `tls://`. */
export interface TcpTransportOptions {
  /** Shared secret the broker requires on plain TCP (default: $QCOP_TCP_TOKEN). */
  token?: string;
  /** CA certificate(s) the broker's certificate must chain to: a PEM file path or PEM text ($QCOP_TLS_CA). */
  ca?: string | Buffer;
  /** This client's certificate for mutual TLS ($QCOP_TLS_CERT). */
  cert?: string | Buffer;
  /** This client's private key for mutual TLS ($QCOP_TLS_KEY). */
  key?: string | Buffer;
  /** Name the broker's certificate must carry (default: the URL's host). */
  servername?: string;
  /** Time for TCP connect, TLS and preamble together (default 2000 ms). */
  timeoutMs?: number;
}

/** Where a dialer goes and how to open one connection (the shape runtime/client/dial.ts expects). */
export interface TcpTarget {
  where: string;
  dial(): Promise<Duplex>;
}

function stringOpt(o: Record<string, unknown>, key: string, env: string): string | undefined {
  const v = o[key];
  if (v !== undefined && typeof v !== 'string' && !Buffer.isBuffer(v)) throw new QcopError('EINVAL', `transport option ${key} must be a string`);
  return (v as string | undefined) ?? process.env[env] ?? undefined;
}

/** Builds the dialer for a `tcp://` or `tls://` URL; files are read once, here. */
export function tcpTarget(url: string, options: Record<string, unknown> = {}): TcpTarget {
  const u = parseBrokerUrl(url);
  const token = stringOpt(options, 'token', 'QCOP_TCP_TOKEN');
  const timeoutMs = typeof options.timeoutMs === 'number' ? options.timeoutMs : 2000;
  const secure = u.secure
    ? {
        ca: pem(stringOpt(options, 'ca', 'QCOP_TLS_CA'), 'CA certificate'),
        cert: pem(stringOpt(options, 'cert', 'QCOP_TLS_CERT'), 'client certificate'),
        key: pem(stringOpt(options, 'key', 'QCOP_TLS_KEY'), 'client key'),
        servername: typeof options.servername === 'string' ? options.servername : net.isIP(u.host) ? undefined : u.host,
      }
    : null;
  // No token given for a plain loopback broker: use the one it left for local clients of this user.
  const tokenNow = () => token || (!secure && isLoopback(u.host) ? readLocalToken(u.port) : undefined);
  return { where: u.where, dial: () => dialOnce(u.host, u.port, u.where, secure, tokenNow(), timeoutMs) };
}

function open(host: string, port: number, secure: tls.ConnectionOptions | null): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s: net.Socket = secure ? tls.connect({ host, port, ...secure }) : net.createConnection({ host, port });
    const onError = (err: Error) => {
      s.destroy();
      reject(err);
    };
    s.once('error', onError);
    s.once(secure ? 'secureConnect' : 'connect', () => {
      s.off('error', onError);
      resolve(s);
    });
  });
}

async function dialOnce(host: string, port: number, where: string, secure: tls.ConnectionOptions | null, token: string | undefined, timeoutMs: number): Promise<Duplex> {
  let socket: net.Socket | undefined;
  // A refused client certificate shows up as an alert that may race the close: keep the first error.
  let socketError: Error | undefined;
  const timer = setTimeout(() => socket?.destroy(new Error(`no answer from ${where} within ${timeoutMs} ms`)), timeoutMs);
  try {
    socket = await open(host, port, secure);
    socket.on('error', (err) => (socketError ??= err));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.write(authLine(token || undefined));
    // PROTOCOL 9.3: nothing but the verdict line comes before the broker's welcome.
    const { line } = await readLine(socket, timeoutMs);
    const verdict = parseVerdict(line);
    if (!verdict.ok) {
      socket.destroy();
      throw QcopError.fromWire(verdict.code, `${where} refused the connection: ${verdict.text}`);
    }
    socket.resume();
    return socket;
  } catch (err) {
    socket?.destroy();
    if (err instanceof QcopError) throw err;
    const cause = (socketError ?? err) as NodeJS.ErrnoException;
    if (secure && isTlsRefusal(cause)) {
      throw new QcopError('EACCES', `TLS with ${where} failed: ${cause.message.split('\n')[0]}`, { cause });
    }
    if (secure && socket && /closed during the preamble/.test((err as Error).message)) {
      // The handshake completed on our side, then the broker hung up without a verdict: with
      // TLS 1.3 that is how a refused client certificate looks when the alert is lost.
      throw new QcopError('EACCES', `TLS with ${where} failed: the broker closed the connection before the preamble answer (client certificate missing or not accepted?)`, { cause });
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
