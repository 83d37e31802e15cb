// Segments of a message pool (docs/SHM.md §8, §10): the producer's (read-write, pages reserved before use), the
// broker's attachment and receivers' read-only views, each able to tell whether its file still backs a slot.
import { native } from '../native/index.js';
import { QcopError } from '../protocol/errors.js';
import { F, HEADER_BYTES, Header } from './header.js';
import { qcopEntries, systemName, validateKey } from './names.js';
import { openObject } from './ownership.js';
import { attachEntrySync, createEntry, releaseEntry, removeIfStale, groupOrNone, sys, type Entry } from './registry.js';

/** Every pool segment's key starts with this (`qcop-pool/<pid>-<random>/<n>`, runtime/client/pool.ts). */
export const POOL_KEY_PREFIX = 'qcop-pool/';

/** A mapped pool segment: what the broker and receivers hold. */
export interface PoolView {
  /** Usable bytes. */
  readonly size: number;
  /** The data, zero copy. Read-only memory for everyone but the producer. */
  readonly buffer: Buffer;
  /**
   * True while the file still backs `[offset, offset + length)` of the data and no fault has
   * replaced the mapping with zero pages (docs/SHM.md §10): only then are the bytes the producer's.
   */
  intact(offset: number, length: number): boolean;
  /** Unmaps (and, for a registered attachment, unregisters; the last one out removes the segment). */
  close(): void;
}

/** A pool segment of the producer or of the broker (registered as attacher). */
export interface PoolSegment extends PoolView {
  /** The shm_open name, `/qcop.<uid>.m.<escaped key>`: what receivers map. */
  readonly name: string;
  /**
   * Producer only: backs the data up to byte `end` with pages now (posix_fallocate, in MiB steps),
   * so a full /dev/shm is a QcopError `ENOSPC` here rather than SIGBUS at the first write. False,
   * and nothing reserved, when the file was shrunk under its producer (docs/SHM.md §10): growing it
   * back would let receivers whose mapping faulted on it read zeros where data now are.
   */
  reserve(end: number): boolean;
  /**
   * Unmaps and unregisters; the last one out removes the segment. `idle` (producer only: no slot of it
   * is in flight, so no receiver will open it by name again) removes its name even while the broker is
   * still attached, which a broker running as another user could not do (docs/SHM.md §8).
   */
  close(idle?: boolean): void;
}

/** Pages are reserved in steps of this much, so a steady stream of sends rarely makes a system call. */
const RESERVE_STEP = 1 << 20;
/** The broker refuses segments that others may write (they could shrink them) or anyone outside the group may read. */
const FOREIGN_BITS = 0o027;
const GROUP_READ = 0o040;

function intactCheck(fd: number, data: ArrayBuffer, dataOffset: number, faults: () => number): (offset: number, length: number) => boolean {
  let seen = faults();
  let poisoned = false;
  return (offset, length) => {
    const n = native();
    // The fault counter moves only when some mapping of this process was poisoned: ask about ours then.
    if (!poisoned && faults() !== seen) {
      seen = faults();
      poisoned = n.poisoned(data);
    }
    if (poisoned) return false;
    try {
      return n.fileSize(fd) >= dataOffset + offset + length;
    } catch {
      return false;
    }
  };
}

const faultCount = () => native().guardFaults();

function segmentOf(entry: Entry, data: ArrayBuffer, size: number, dataOffset: number, writable: boolean): PoolSegment {
  let closed = false;
  let reserved = 0;
  return {
    name: entry.name,
    size,
    buffer: Buffer.from(data, 0, size),
    intact: intactCheck(entry.fd, data, dataOffset, faultCount),
    reserve(end) {
      if (!writable || end <= reserved) return true;
      if (native().fileSize(entry.fd) < dataOffset + size) return false;
      const upTo = Math.min(size, Math.ceil(end / RESERVE_STEP) * RESERVE_STEP);
      sys('posix_fallocate', (n) => n.fallocate(entry.fd, dataOffset + reserved, upTo - reserved));
      reserved = upTo;
      return true;
    },
    close(idle = false) {
      if (closed) return;
      closed = true;
      native().munmap(data);
      releaseEntry(entry, 'segment', null, writable && idle);
    },
  };
}

let swept = false;

/**
 * Removes this user's stale pool segments, once per process: those of producers that died (or were
 * stopped by a signal) after a broker running as another user had let go, which only their user or
 * root may remove (docs/SHM.md §8). Stale means nobody holds PRESENCE, so no receiver needs them.
 */
function sweepStalePools(): void {
  if (swept) return;
  swept = true;
  const head = `${systemName('segment', POOL_KEY_PREFIX.slice(0, -1)).slice(1)}.`; // the key's '/' is '.' in a name
  for (const entry of qcopEntries()) {
    if (!entry.startsWith(head)) continue;
    try {
      removeIfStale(`/${entry}`, 'segment');
    } catch {
      // changed meanwhile, or not ours: leave it
    }
  }
}

/**
 * Creates a pool segment synchronously (send() cannot wait). Mode 0600, or 0640 with the broker's
 * group: only the producer can write or shrink it, and exactly those who may receive can read it
 * (SPEC §3, §8). The header page is backed at creation and the data pages with `reserve()` as slots
 * are used, so a full /dev/shm is `ENOSPC`, never a fault.
 */
export function createPoolSegment(key: string, size: number, group?: number | string): PoolSegment {
  validateKey(key);
  const n = native();
  const gid = groupOrNone(group);
  const offset = Math.max(HEADER_BYTES, n.pageSize);
  sweepStalePools();
  const entry = createEntry(systemName('segment', key), 'segment', key, size, offset + size, offset, { mode: gid >= 0 ? 0o640 : 0o600 }, gid, offset);
  try {
    const data = sys('mmap', (x) => x.mmap(entry.fd, size, offset, false));
    entry.header.markReady();
    return segmentOf(entry, data, size, offset, true);
  } catch (e) {
    releaseEntry(entry, 'segment');
    throw e;
  }
}

/** The header's data offset and size after checking them against the file (fstat): never trusted blindly. */
function layoutOf(name: string, fd: number, header: Header): { offset: number; size: number } {
  if (!header.isReady('segment')) throw new QcopError('ENOENT', `pool segment ${name} is not ready`);
  const size = header.size;
  const offset = header.get(F.DATA_OFFSET);
  if (offset !== Math.max(HEADER_BYTES, native().pageSize) || size <= 0 || offset + size > native().fstat(fd).size) {
    throw new QcopError('EINVAL', `pool segment ${name} is shorter than its header says`);
  }
  return { offset, size };
}

/**
 * The broker's attachment to a client's pool segment, made only after checking, on the open
 * descriptor, that its owner is `uid` (the peer's kernel-verified uid: a client cannot make the
 * broker read another user's memory), that nobody else may write it (`FOREIGN_BITS`), that only the
 * broker's group (`gid`) may read it, and that the file is as large as its header says. Attached
 * (so the segment outlives a crashed sender until the broker lets go), data mapped read-only; a
 * broker that is neither root nor the producer opens it read-only (through its group) and holds
 * PRESENCE all the same, without a slot.
 */
export function attachPoolSegment(key: string, uid: number, gid?: number): PoolSegment {
  validateKey(key);
  const entry = attachEntrySync(systemName('segment', key, uid), 'segment', key, true);
  try {
    const { name, st } = entry;
    if (st.uid !== uid) throw new QcopError('EACCES', `pool segment ${name} is not owned by uid ${uid}`);
    if (st.mode & FOREIGN_BITS) throw new QcopError('EACCES', `pool segment ${name} has mode 0${(st.mode & 0o777).toString(8)}: others could write or read it`);
    if (st.mode & GROUP_READ && st.gid !== gid) throw new QcopError('EACCES', `pool segment ${name} is readable by group ${st.gid}, not the broker's`);
    const { offset, size } = layoutOf(name, entry.fd, entry.header);
    const data = sys('mmap', (x) => x.mmap(entry.fd, size, offset, true));
    return segmentOf(entry, data, size, offset, false);
  } catch (e) {
    releaseEntry(entry, 'segment');
    throw e;
  }
}

/**
 * Maps a pool segment's data read-only without registering (receivers): the mapping stays valid
 * after the name is unlinked, and a receiver never keeps a departed sender's pool alive. The
 * descriptor stays open so that `intact()` can re-check the file's size before each message.
 */
export function mapPoolView(name: string): PoolView {
  if (!/^\/qcop\.\d+\.m\.[^/]+$/.test(name)) throw new QcopError('EINVAL', `'${name}' is not a pool segment name`);
  const n = native();
  // Read-only, never through a link or into a FIFO, and only a file of the user its name says (docs/SHM.md §2).
  const { fd, st } = openObject(name, false, 'segment', name);
  let keep = false;
  try {
    if (st.size < HEADER_BYTES) throw new QcopError('ENOENT', `pool segment ${name} has no header`);
    const head = sys('mmap', (x) => x.mmap(fd, HEADER_BYTES, 0, true));
    let layout: { offset: number; size: number };
    try {
      layout = layoutOf(name, fd, new Header(head));
    } finally {
      n.munmap(head);
    }
    const data = sys('mmap', (x) => x.mmap(fd, layout.size, layout.offset, true));
    keep = true;
    let closed = false;
    return {
      size: layout.size,
      buffer: Buffer.from(data, 0, layout.size),
      intact: intactCheck(fd, data, layout.offset, faultCount),
      close() {
        if (closed) return;
        closed = true;
        n.munmap(data);
        try { n.close(fd); } catch { /* closed */ }
      },
    };
  } finally {
    if (!keep) try { n.close(fd); } catch { /* closed */ }
  }
}
