// A local client's kernel-verified credentials, read once when its connection is accepted (SO_PEERCRED).
import type { Duplex } from 'node:stream';
import { native, nativeAvailable, type PeerCred } from '../native/index.js';

/**
 * The credentials of the process at the other end of an accepted Unix socket, or null when they
 * cannot be read (no native addon). Node has no public accessor for an accepted socket's
 * descriptor, so it is taken from the socket's handle here, once, and nowhere else.
 */
export function peerCredOf(stream: Duplex, transport: string): PeerCred | null {
  if (transport === 'inprocess') return { pid: process.pid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  if (transport !== 'unix' || !nativeAvailable()) return null;
  const fd = (stream as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  try {
    return native().peerCred(fd);
  } catch {
    return null;
  }
}
