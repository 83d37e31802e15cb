// Lifecycle shared by segments and semaphores: create (taking over stale objects), attach, last-detach removal.
// Who is attached is kept by the kernel: OFD locks on the object's descriptor (header.ts OFD, docs/SHM.md §4).
import { fchmodSync, fchownSync, fstatSync, readSync, type Stats } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { native, type NativeApi } from '../native/index.js';
import { resolveGroup } from './ids.js';
import { QcopError } from '../protocol/errors.js';
import { F, HEADER_BYTES, Header, OFD } from './header.js';
import { currentUid, type ShmKind } from './names.js';
import { SquatError, mayRemove, openObject, removeSquatter, sameObject, trustedSemid, type Opened } from './ownership.js';

/** One open registration of a shm object in this process. */
export interface Entry {
  name: string;
  fd: number;
  header: Header;
  /** Attacher slot (listed by `qcop shm ls`), -1 when read-only or the table is full. */
  slot: number;
  created: boolean;
  /** Opened read-write: may lock, register, and remove the object. */
  writable: boolean;
  /** The user the name says and the file's owner (verified at open). */
  owner: number;
  /** fstat at open: the object this handle holds, whatever the name points to later. */
  st: Stats;
}

/** Runs a native call, turning its errno errors into QcopErrors with the same code. */
export function sys<T>(what: string, fn: (n: NativeApi) => T): T {
  const n = native();
  try {
    return fn(n);
  } catch (e) {
    if (typeof (e as { code?: unknown }).code === 'string' && !(e instanceof QcopError)) throw QcopError.fromSystem(e, what);
    throw e;
  }
}

const ATTEMPTS = 2000;

function closeQuiet(fd: number): void {
  try { native().close(fd); } catch { /* already closed */ }
}

/** A copy of the header read from the descriptor (no mapping: a peer cannot fault us through it); null when too short. */
export function readHeader(fd: number, st: Stats): Header | null {
  if (st.size < HEADER_BYTES) return null;
  const buf = new ArrayBuffer(HEADER_BYTES);
  return readSync(fd, new Uint8Array(buf), 0, HEADER_BYTES, 0) === HEADER_BYTES ? new Header(buf) : null;
}

/** True when a description other than `fd`'s holds the object (its creator or another attacher). */
function othersAttached(fd: number): boolean {
  return native().ofdHeld(fd, OFD.PRESENCE, 1) !== 0;
}

/**
 * Takes the write lock on PRESENCE through `fd` (so no other description is attached), checks the
 * name still refers to this object, and unlinks it (with its kernel semaphore, `semid`, when given).
 * 'live' when someone is attached, 'gone' when the name went elsewhere meanwhile.
 */
function removeLocked(name: string, fd: number, st: Stats, semid: number | null): 'removed' | 'live' | 'gone' {
  const n = native();
  if (!n.ofdLock(fd, OFD.PRESENCE, 1, 2)) return 'live';
  // Every remover unlinks only under this lock and after this check, so no remover unlinks a newer object.
  if (!sameObject(name, st)) return 'gone';
  if (semid !== null) {
    try { n.semRemove(semid); } catch { /* already removed */ }
  }
  try { n.shmUnlink(name); } catch { return 'gone'; }
  return 'removed';
}

/**
 * Removes `name` when it is stale (nobody attached) and its user's own, with its semaphore when the
 * registry names one we can trust; a squatter is removed instead when we are root. 'removed', 'gone'
 * (nothing there any more), 'live', or 'denied' (not ours to remove). `strict` throws instead of 'denied';
 * `key` names the object in errors.
 */
export function removeIfStale(name: string, kind: ShmKind, strict = false, key = name): 'removed' | 'gone' | 'live' | 'denied' {
  if (removeSquatter(name)) return 'removed';
  let opened: Opened;
  try {
    opened = openObject(name, true, kind, key);
  } catch (e) {
    const code = (e as QcopError).code;
    if (code === 'ENOENT') return 'gone';
    if (!strict && (code === 'EACCES' || code === 'EPERM')) return 'denied';
    throw e;
  }
  try {
    if (!mayRemove(opened.owner)) return 'denied';
    if (othersAttached(opened.fd)) return 'live';
    let semid: number | null = null;
    if (kind === 'semaphore') {
      const trusted = trustedSemid(opened.st, opened.owner, readHeader(opened.fd, opened.st));
      if (typeof trusted === 'number') semid = trusted; // otherwise only the file goes
    }
    return removeLocked(name, opened.fd, opened.st, semid);
  } finally {
    closeQuiet(opened.fd);
  }
}

/** A group (gid or name) for a new object's group bits; -1 for none; EINVAL for an unknown name (shm/ids.ts resolves it). */
export function groupOrNone(group: number | string | undefined): number {
  return group === undefined ? -1 : resolveGroup(group);
}

/** Backs the first `length` bytes of a new object with pages now; ENOSPC names what did not fit. */
function reservePages(fd: number, length: number, kind: ShmKind, key: string): void {
  try {
    native().fallocate(fd, 0, length);
  } catch (e) {
    const what = (e as { code?: string }).code === 'ENOSPC' ? `no space in /dev/shm for ${length} bytes of shared ${kind} '${key}'` : `reserving shared ${kind} '${key}'`;
    throw QcopError.fromSystem(e, what);
  }
}

/** Sharing options of a new object. */
export interface CreateOptions { mode?: number; group?: number | string }

/** Mode of a new object's file: a semaphore registry is never writable by others (its semaphore id must be the owner's word). */
export function fileMode(kind: ShmKind, opts: CreateOptions, gid: number): number {
  const mode = (opts.mode ?? (gid >= 0 ? 0o660 : 0o600)) & 0o777;
  return kind === 'semaphore' ? mode & ~0o022 : mode;
}

/**
 * Creates `name` exclusively (O_EXCL, never through a link) with `bytes` of backing store, the first
 * `reserve` of them (all by default, at least the header) backed with pages now (posix_fallocate): a
 * full /dev/shm is ENOSPC here, never SIGBUS at the first write (docs/SHM.md §10). A stale object of
 * the user's own is taken over, a squatter removed when we are root. EEXIST when it is in use,
 * EACCES (SquatError) when another user squats the name.
 */
export function createEntry(name: string, kind: ShmKind, key: string, size: number, bytes: number,
  dataOffset: number, opts: CreateOptions, gid: number, reserve = bytes): Entry {
  const n = native();
  const uid = currentUid();
  const mode = fileMode(kind, opts, gid);
  for (let attempt = 0; attempt < 16; attempt++) {
    let fd: number;
    try {
      fd = sys('shm_open', (x) => x.shmOpen(name, x.flags.O_RDWR | x.flags.O_CREAT | x.flags.O_EXCL, mode));
    } catch (e) {
      if ((e as QcopError).code !== 'EEXIST') throw e;
      // Whatever holds the name is verified before anything of it is read: a squatter is EACCES (or removed by root).
      const r = removeIfStale(name, kind, true, key);
      if (r === 'removed' || r === 'gone') continue;
      throw new QcopError('EEXIST', `shared ${kind} '${key}' is in use`);
    }
    let ab: ArrayBuffer | null = null;
    try {
      // Attached before anything else; a remover that took the empty object for stale made the name go elsewhere.
      if (!n.ofdLock(fd, OFD.PRESENCE, 1, 1) || !sameObject(name, fstatSync(fd))) { closeQuiet(fd); continue; }
      fchmodSync(fd, mode); // shm_open's mode went through the umask
      if (gid >= 0) fchownSync(fd, uid, gid);
      sys('ftruncate', (x) => x.ftruncate(fd, bytes));
      const pages = Math.min(bytes, Math.max(reserve, HEADER_BYTES));
      reservePages(fd, pages, kind, key);
      ab = sys('mmap', (x) => x.mmap(fd, HEADER_BYTES, 0, false));
      const header = new Header(ab);
      header.init(kind, key, size, dataOffset, uid);
      const slot = header.register(n, fd);
      return { name, fd, header, slot, created: true, writable: true, owner: uid, st: fstatSync(fd) };
    } catch (e) {
      if (ab) n.munmap(ab);
      try { n.shmUnlink(name); } catch { /* gone already */ }
      closeQuiet(fd);
      throw e;
    }
  }
  throw new QcopError('EEXIST', `shared ${kind} '${key}' keeps changing under us`);
}

/** One attempt to attach: an Entry, or 'retry' while the object is being built or removed. */
function tryAttach(name: string, kind: ShmKind, key: string, readOnly: boolean, readFallback: boolean): Entry | 'retry' {
  const n = native();
  let opened: Opened;
  try {
    opened = openObject(name, true, kind, key);
  } catch (e) {
    if ((e as QcopError).code !== 'EACCES' || !(readOnly || readFallback) || e instanceof SquatError) throw e;
    opened = openObject(name, false, kind, key); // read permission only: no slot, no lock
  }
  const { fd, writable } = opened;
  let ab: ArrayBuffer | null = null;
  let keep = false;
  try {
    if (!n.ofdLock(fd, OFD.PRESENCE, 1, 1)) return 'retry'; // a remover holds it: the name is going away
    if (!sameObject(name, opened.st)) return 'retry'; // removed before we were attached
    const st = fstatSync(fd);
    const copy = readHeader(fd, st);
    if (!copy || !copy.isReady(kind)) {
      if (othersAttached(fd)) return 'retry'; // its creator is still filling it in
      throw new QcopError('ENOENT', `no shared ${kind} '${key}' (its creator died before finishing it)`);
    }
    if (kind === 'segment') {
      const offset = copy.get(F.DATA_OFFSET);
      if (offset < HEADER_BYTES || offset % n.pageSize !== 0 || copy.size <= 0 || offset + copy.size > st.size) {
        throw new QcopError('EINVAL', `shared segment '${key}' has a header that does not fit its file`);
      }
    }
    ab = sys('mmap', (x) => x.mmap(fd, HEADER_BYTES, 0, !writable));
    const header = new Header(ab);
    const slot = writable ? header.register(n, fd) : -1;
    keep = true;
    return { name, fd, header, slot, created: false, writable, owner: opened.owner, st };
  } finally {
    if (!keep) {
      if (ab) n.munmap(ab);
      closeQuiet(fd);
    }
  }
}

/**
 * Opens an existing ready object and registers this handle; ENOENT when there is none, EACCES when
 * another user squats the name. `readFallback` opens read-only when only reading is allowed (semaphores).
 */
export async function attachEntry(name: string, kind: ShmKind, key: string, readOnly: boolean,
  readFallback = false): Promise<Entry> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const r = tryAttach(name, kind, key, readOnly, readFallback);
    if (r !== 'retry') return r;
    await sleep(1);
  }
  throw new QcopError('ENOENT', `shared ${kind} '${key}' never became ready`);
}

/**
 * `attachEntry` without waiting, for callers that cannot await (the broker's pool attach): ENOENT while
 * not ready. `readFallback`: read-only (no slot, header and data mapped PROT_READ) when this user may
 * only read the object, as a broker that is neither root nor the producer (docs/SHM.md §8).
 */
export function attachEntrySync(name: string, kind: ShmKind, key: string, readFallback = false): Entry {
  for (let attempt = 0; attempt < 8; attempt++) {
    const r = tryAttach(name, kind, key, false, readFallback);
    if (r !== 'retry') return r;
  }
  throw new QcopError('ENOENT', `shared ${kind} '${key}' is not ready`);
}

/**
 * Unregisters the handle; the last one out (no other description holds PRESENCE) removes the object,
 * and `semid` with it. Returns true when removed. `unlinkAnyway` (the owner of an object nobody will
 * look up by name again: a pool segment with nothing in flight) removes the name even while others are
 * attached: their mappings stay valid, and an attacher that cannot remove it (a broker running as
 * another user) leaves nothing behind. No remover can act meanwhile, as this handle still holds PRESENCE.
 */
export function releaseEntry(entry: Entry, _kind: ShmKind, semid: number | null = null, unlinkAnyway = false): boolean {
  const n = native();
  let removed = false;
  try {
    if (entry.slot >= 0) entry.header.unregister(entry.slot, n, entry.fd);
    if (entry.writable && mayRemove(entry.owner)) {
      const r = removeLocked(entry.name, entry.fd, entry.st, semid);
      removed = r === 'removed';
      if (r === 'live' && unlinkAnyway && sameObject(entry.name, entry.st)) {
        try { n.shmUnlink(entry.name); removed = true; } catch { /* gone already */ }
      }
    }
  } finally {
    n.munmap(entry.header.buffer);
    closeQuiet(entry.fd); // drops every lock of this description
  }
  return removed;
}
