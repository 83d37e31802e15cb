// TCP addresses: `HOST:PORT` for the broker's listener, `tcp://` / `tls://` URLs for clients and links.
import * as net from 'node:net';
import { QcopError } from '../../runtime/index.js';

/** The port `tcp://host` and `--tcp HOST` use when none is given. */
export const DEFAULT_TCP_PORT = 7411;

export interface HostPort {
  host: string;
  port: number;
}

function port(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new QcopError('EINVAL', `${what}: '${text}' is not a port number`);
  return n;
}

/**
 * Parses the broker's `--tcp` value. A bare port means loopback: listening beyond this machine
 * needs the host written out (`0.0.0.0:7411`, `[::]:7411`, an interface address).
 */
export function parseListenAddress(text: string): HostPort {
  if (/^\d+$/.test(text)) return { host: '127.0.0.1', port: port(text, '--tcp') };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\s]+):(\d+)$/.exec(text);
  if (!m) throw new QcopError('EINVAL', `--tcp: '${text}' is not HOST:PORT (IPv6 as [::1]:PORT)`);
  return { host: m[1]!, port: port(m[2]!, '--tcp') };
}

/** True for addresses that never leave this machine. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

/** A parsed broker URL. */
export interface BrokerUrl extends HostPort {
  secure: boolean;
  /** The URL as a human reads it, for messages and stats. */
  where: string;
}

/** Parses `tcp://host[:port]` or `tls://host[:port]`. */
export function parseBrokerUrl(url: string): BrokerUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QcopError('EINVAL', `'${url}' is not a broker URL (tcp://host:port or tls://host:port)`);
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (scheme !== 'tcp' && scheme !== 'tls') throw new QcopError('EINVAL', `'${url}': the scheme must be tcp or tls`);
  if (!u.hostname) throw new QcopError('EINVAL', `'${url}' names no host`);
  if ((u.pathname && u.pathname !== '/') || u.search || u.username) {
    throw new QcopError('EINVAL', `'${url}': only scheme, host and port are allowed (pass the token as an option, not in the URL)`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const p = u.port ? port(u.port, url) : DEFAULT_TCP_PORT;
  const shown = net.isIPv6(host) ? `[${host}]` : host;
  return { host, port: p, secure: scheme === 'tls', where: `${scheme}://${shown}:${p}` };
}
