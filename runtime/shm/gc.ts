// Listing and reclaiming qcop shm objects under /dev/shm: what `qcop shm ls|gc` and the broker's start call.
import { native, type NativeApi } from '../native/index.js';
import { F, OFD } from './header.js';
import { POOL_KEY_PREFIX } from './pool-segment.js';
import { parseSystemName, qcopEntries, systemName, type ParsedName, type ShmKind } from './names.js';
import { SquatError, openObject, trustedSemid } from './ownership.js';
import { readHeader, removeIfStale } from './registry.js';

/** One row of `qcop shm ls`. */
export interface SegmentInfo {
  /** The key as given to create/open. */
  key: string;
  /** A data segment, or a semaphore. */
  kind: ShmKind;
  /** Usable bytes of a segment; 0 for a semaphore. */
  size: number;
  /** Owner of the object. */
  uid: number;
  /** Live attached processes of this pid namespace (a process with several handles appears once). */
  pids: number[];
  /** True when no live process has it attached, in any pid namespace (or it is squatted): `collectGarbage` would remove it. */
  stale: boolean;
  /** Units available now (semaphores only). */
  value?: number;
  /** The /dev/shm entry, for diagnostics. */
  name: string;
  /** Present when the name is held by another user than the one it names (or is not a plain file); only root can remove it. */
  squatted?: true;
}

/** Result of `collectGarbage`. */
export interface GcResult { removed: string[] }

/** The row of one entry, or null when this user cannot read it (another user's private object) or it is gone. */
function inspect(n: NativeApi, entry: string, parsed: ParsedName): SegmentInfo | null {
  const name = `/${entry}`;
  const info: SegmentInfo = { key: parsed.key ?? entry, kind: parsed.kind, size: 0, uid: parsed.uid, pids: [], stale: false, name: entry };
  let opened;
  try {
    opened = openObject(name, false, parsed.kind, info.key);
  } catch (e) {
    // A squatter's bytes are never read: the row comes from its name and its owner only.
    if (e instanceof SquatError) return { ...info, uid: e.squatter, stale: true, squatted: true };
    return null;
  }
  const { fd, st } = opened;
  try {
    info.uid = st.uid;
    info.stale = n.ofdHeld(fd, OFD.PRESENCE, 1) === 0; // the kernel's word, whatever namespace holds it
    const header = readHeader(fd, st);
    if (!header || !header.isReady(parsed.kind)) return info;
    // A hashed name's key is only in the header; believe it when it hashes to this very name.
    if (parsed.key === null && systemName(parsed.kind, header.key, parsed.uid) === name) info.key = header.key;
    if (parsed.kind === 'segment') info.size = header.size;
    info.pids = info.stale ? [] : header.livePids(n, fd);
    if (parsed.kind === 'semaphore') {
      const semid = trustedSemid(st, opened.owner, header);
      if (typeof semid === 'number') {
        try { info.value = n.semStat(semid).value; } catch { /* removed meanwhile */ }
      }
    }
    return info;
  } finally {
    try { n.close(fd); } catch { /* closed */ }
  }
}

/** Every qcop segment and semaphore this user can read, with its attachers and whether it is stale. */
export function listSegments(): SegmentInfo[] {
  const n = native();
  const out: SegmentInfo[] = [];
  for (const entry of qcopEntries()) {
    const parsed = parseSystemName(entry);
    if (!parsed) continue;
    const info = inspect(n, entry, parsed);
    if (info) out.push(info);
  }
  return out;
}

/**
 * Removes every stale segment and semaphore this user may remove (root: also squatters); returns their
 * keys. Each removal re-checks under the kernel lock, so an object someone attaches meanwhile is kept.
 */
export function collectGarbage(): GcResult {
  const removed: string[] = [];
  for (const info of listSegments()) {
    if (!info.stale) continue;
    try {
      if (removeIfStale(`/${info.name}`, info.kind) === 'removed') removed.push(info.key);
    } catch {
      // changed meanwhile, or not ours to remove: leave it
    }
  }
  return { removed };
}

/**
 * Whether the object `entry` is stale and left by one of `pids`: its creator, an attacher recorded in
 * its table, or (a pool segment) the producer its key names. Read-only: nothing is mapped or changed.
 */
function leftBy(n: NativeApi, entry: string, parsed: ParsedName, pids: ReadonlySet<number>): boolean {
  let opened;
  try {
    opened = openObject(`/${entry}`, false, parsed.kind, parsed.key ?? entry);
  } catch {
    return false; // gone, squatted or not ours to read: `qcop shm gc` as root deals with those
  }
  try {
    if (n.ofdHeld(opened.fd, OFD.PRESENCE, 1) !== 0) return false; // someone alive holds it
    const pool = parsed.key?.startsWith(POOL_KEY_PREFIX) ? Number(/^(\d+)-/.exec(parsed.key.slice(POOL_KEY_PREFIX.length))?.[1]) : NaN;
    if (pids.has(pool)) return true;
    const header = readHeader(opened.fd, opened.st);
    if (!header) return false;
    if (pids.has(header.get(F.CREATOR_PID))) return true;
    return header.recordedPids().some((p) => pids.has(p));
  } finally {
    try { n.close(opened.fd); } catch { /* closed */ }
  }
}

/**
 * Removes every stale object left by the processes `pids` (ARCHITECTURE: the broker calls this when a
 * client departs, runtime/broker/departed.ts): pool segments, segments and semaphores it created or was
 * attached to when it died. An object anybody alive still holds is kept; removal re-checks under the
 * kernel lock like `collectGarbage`. Returns the keys removed.
 */
export function reclaimLeftovers(pids: ReadonlySet<number>): string[] {
  if (pids.size === 0) return [];
  const n = native();
  const removed: string[] = [];
  for (const entry of qcopEntries()) {
    const parsed = parseSystemName(entry);
    if (!parsed || !leftBy(n, entry, parsed, pids)) continue;
    try {
      if (removeIfStale(`/${entry}`, parsed.kind) === 'removed') removed.push(parsed.key ?? entry);
    } catch {
      // changed meanwhile, or not ours to remove: leave it
    }
  }
  return removed;
}
