// Opening a byte stream to a broker: Unix socket paths and URLs; other transports plug in here.
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { checkClientFolder } from '../broker/socket-path.js';
import { QcopError } from '../protocol/errors.js';

/** Opens one connection to the broker; rejects when nothing answers. */
export type Dialer = () => Promise<Duplex>;

/** A human description of where a dialer goes, for error messages. */
export interface Target {
  dial: Dialer;
  where: string;
  /** True when the broker runs on this host (Unix socket, in-process): shared memory may be used (PROTOCOL 8.1). */
  local?: boolean;
  /** A Unix socket's path: while disconnected the client watches it to reconnect at once (runtime/client/socket-watch.ts). */
  socketPath?: string;
}

/** PROTOCOL 6.3: the largest inbound frame before the welcome (a welcome or an error is small). */
export const INBOUND_BEFORE_WELCOME = 64 * 1024;

/**
 * PROTOCOL 6.3: after the welcome, the frame limit the broker announced, at least 1 MiB (answers
 * such as stats are not bound by it) and never above the client's own cap.
 */
export function inboundLimit(announced: unknown, cap: number): number {
  const floor = 1 << 20;
  return Math.min(typeof announced === 'number' && Number.isSafeInteger(announced) ? Math.max(announced, floor) : floor, cap);
}

/**
 * Dials a Unix socket path. With `checkFolder` (the default path of a non-root user), each dial
 * first checks that nobody else controls the socket's folder (SPEC §8): EACCES otherwise.
 */
export function unixTarget(socketPath: string, checkFolder = false): Target {
  return {
    where: socketPath,
    local: true,
    socketPath,
    dial: () =>
      new Promise((resolve, reject) => {
        const distrust = checkFolder ? checkClientFolder(socketPath) : null;
        if (distrust) return reject(distrust);
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
