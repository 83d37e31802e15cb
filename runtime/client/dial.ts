// Opening a byte stream to a broker: Unix socket paths and URLs; other transports plug in here.
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { QcopError } from '../protocol/errors.js';

/** Opens one connection to the broker; rejects when nothing answers. */
export type Dialer = () => Promise<Duplex>;

/** A human description of where a dialer goes, for error messages. */
export interface Target {
  dial: Dialer;
  where: string;
  /** True when the broker runs on this host (Unix socket, in-process): shared memory may be used (PROTOCOL 8.1). */
  local?: boolean;
}

/** Dials a Unix socket path. */
export function unixTarget(socketPath: string): Target {
  return {
    where: socketPath,
    local: true,
    dial: () =>
      new Promise((resolve, reject) => {
        const s = net.createConnection(socketPath);
        const onError = (err: Error) => {
          s.destroy();
          reject(err);
        };
        s.once('error', onError);
        s.once('connect', () => {
          s.off('error', onError);
          resolve(s);
        });
      }),
  };
}

/**
 * Resolves a URL: `unix:/path` or a plain path goes to a Unix socket; `tcp://` and `tls://`
 * load the TCP channel on demand, so a program that never uses them never loads that code.
 */
export async function targetFor(url: string, options: Record<string, unknown> = {}): Promise<Target> {
  if (url.startsWith('unix:')) return unixTarget(url.replace(/^unix:(\/\/)?/, ''));
  if (url.startsWith('/') || url.startsWith('.')) return unixTarget(url);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'tcp' || scheme === 'tls') {
    const spec = '../../channels/tcp/dial.js';
    const mod = (await import(spec)) as { tcpTarget(url: string, options: Record<string, unknown>): Target };
    return mod.tcpTarget(url, options);
  }
  if (scheme === 'serial') {
    const spec = '../../channels/serial/dial.js';
    const mod = (await import(spec)) as { serialTarget(url: string, options: Record<string, unknown>): Target };
    return mod.serialTarget(url, options);
  }
  throw new QcopError('EINVAL', `unsupported broker URL '${url}' (use a socket path, unix:/path, tcp://host:port or serial:///dev/ttyX)`);
}
