// A local client's kernel-verified identity, read once when its connection is accepted (SO_PEERCRED, SPEC §9).
import * as fs from 'node:fs';
import type { Duplex } from 'node:stream';
import { native, nativeAvailable } from '../native/index.js';

/** Who is at the other end: uid, primary gid, supplementary groups and pid, as the kernel says. */
export interface PeerIdentity { pid: number; uid: number; gid: number; groups: number[] }

/**
 * The identity of the process at the other end of an accepted Unix socket, or null when it cannot
 * be read (no native addon). Node has no public accessor for an accepted socket's descriptor, so
 * it is taken from the socket's handle here, once, and nowhere else. Supplementary groups come
 * from /proc/PID/status of that pid (the kernel gives SO_PEERCRED's pid in our namespace); when
 * that process is already gone they are empty, which only ever grants less.
 */
export function peerIdentityOf(stream: Duplex, transport: string): PeerIdentity | null {
  if (transport === 'inprocess') {
    return { pid: process.pid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] };
  }
  if (transport !== 'unix' || !nativeAvailable()) return null;
  const fd = (stream as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  try {
    const c = native().peerCred(fd);
    return { ...c, groups: groupsOf(c.pid) };
  } catch {
    return null;
  }
}

/** The supplementary groups of `pid` (the `Groups:` line of /proc/PID/status), or none. */
export function groupsOf(pid: number): number[] {
  try {
    const line = /^Groups:(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
    return line.trim().split(/\s+/).filter(Boolean).map(Number).filter((g) => Number.isInteger(g) && g >= 0);
  } catch {
    return [];
  }
}

