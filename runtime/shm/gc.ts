// Listing and reclaiming qcop shm objects under /dev/shm: what `qcop shm ls|gc` and the broker's start call.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { native } from '../native/index.js';
import { F, HEADER_BYTES, Header } from './header.js';
import { SHM_DIR, parseSystemName, qcopEntries, type ShmKind } from './names.js';
import { removeIfStale } from './registry.js';

const YOUNG_MS = 5000;

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
  /** Live processes attached (a process with several handles appears once). */
  pids: number[];
  /** True when no live process has it attached: `collectGarbage` would remove it. */
  stale: boolean;
  /** Units available now (semaphores only). */
  value?: number;
  /** The /dev/shm entry, for diagnostics. */
  name: string;
}

/** Result of `collectGarbage`. */
export interface GcResult { removed: string[] }

function readHeader(path: string): { header: Header | null; uid: number; mtimeMs: number } | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null; // another user's private object, or gone
  }
  try {
    const st = fstatSync(fd);
    if (st.size < HEADER_BYTES) return { header: null, uid: st.uid, mtimeMs: st.mtimeMs };
    const buf = new ArrayBuffer(HEADER_BYTES);
    readSync(fd, new Uint8Array(buf), 0, HEADER_BYTES, 0);
    return { header: new Header(buf), uid: st.uid, mtimeMs: st.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/** Every qcop segment and semaphore this user can read, with its attachers and whether it is stale. */
export function listSegments(): SegmentInfo[] {
  const n = native();
  const out: SegmentInfo[] = [];
  for (const entry of qcopEntries()) {
    const parsed = parseSystemName(entry);
    if (!parsed) continue;
    const got = readHeader(`${SHM_DIR}/${entry}`);
    if (!got) continue;
    const { header, uid, mtimeMs } = got;
    const info: SegmentInfo = { key: parsed.key ?? entry, kind: parsed.kind, size: 0, uid, pids: [], stale: false, name: entry };
    if (header && header.isReady(parsed.kind)) {
      info.key = header.key;
      info.size = parsed.kind === 'segment' ? header.size : 0;
      info.pids = header.livePids(n);
      info.stale = info.pids.length === 0;
      if (parsed.kind === 'semaphore') {
        try { info.value = n.semStat(header.get(F.SEMID)).value; } catch { info.stale = true; }
      }
    } else {
      const creator = header ? header.get(F.CREATOR_PID) : 0;
      info.stale = creator > 0 ? !n.alive(creator) : Date.now() - mtimeMs > YOUNG_MS;
    }
    out.push(info);
  }
  return out;
}

/** Removes every stale segment and semaphore this user may remove; returns their keys. */
export function collectGarbage(): GcResult {
  const removed: string[] = [];
  for (const info of listSegments()) {
    if (!info.stale) continue;
    try {
      if (removeIfStale(`/${info.name}`, info.kind)) removed.push(info.key);
    } catch {
      // not ours to remove (EACCES/EPERM), or it changed meanwhile: leave it
    }
  }
  return { removed };
}
