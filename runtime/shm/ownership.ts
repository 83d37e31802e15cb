// Whose a /dev/shm object is: opening one without following links or blocking, and checking that its owner is the
// user its name says before anything is read, attached, taken over or removed (SPEC §8; docs/SHM.md §2).
import { constants, fstatSync, lstatSync, rmdirSync, type Stats } from 'node:fs';
import { native } from '../native/index.js';
import { QcopError } from '../protocol/errors.js';
import { F, type Header } from './header.js';
import { SHM_DIR, currentUid, parseSystemName, type ShmKind } from './names.js';

/** Added to every open: a symbolic link is refused (ELOOP), a FIFO planted under the name cannot block us. */
const SAFE = constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A qcop object opened and verified as its user's own. */
export interface Opened {
  fd: number;
  /** fstat of the descriptor (what was opened, not what the name points to later). */
  st: Stats;
  /** Opened read-write (else read-only: the user may only read it). */
  writable: boolean;
  /** The uid the name says, which is also the file's owner. */
  owner: number;
}

/** The uid a qcop system name (`/qcop.<uid>.…`, with or without the slash) says owns it. */
export function nameOwner(name: string): number {
  const parsed = parseSystemName(name.replace(/^\//, ''));
  if (!parsed) throw new QcopError('EINVAL', `'${name}' is not a qcop shared-memory name`);
  return parsed.uid;
}

/** Path of a system name under /dev/shm. */
export function shmPath(name: string): string {
  return `${SHM_DIR}/${name.replace(/^\//, '')}`;
}

/** Why an object is not the named user's own qcop object, or null when it is: another owner, a link, not a file. */
export function foreignReason(st: Stats, owner: number): string | null {
  if (st.isSymbolicLink()) return `is a symbolic link owned by uid ${st.uid}`;
  if (!st.isFile()) return `is not a regular file (owned by uid ${st.uid})`;
  if (st.uid !== owner) return `is owned by uid ${st.uid}, not uid ${owner}`;
  if (st.nlink !== 1) return `has ${st.nlink} hard links`;
  return null;
}

/**
 * A name squatted by someone else: EACCES naming the squatting uid (docs/PROTOCOL.md 5.3). The
 * squatter's bytes are never read; only root can remove the object (`qcop shm gc` as root).
 */
export class SquatError extends QcopError {
  constructor(kind: ShmKind, key: string, name: string, reason: string, readonly squatter: number) {
    super('EACCES', `shared ${kind} '${key}': ${shmPath(name)} ${reason}: the name was squatted by another ` +
      'user and nothing was read from it; root can remove it (`qcop shm gc` run as root)');
  }
}

/** lstat of the name (never followed), or null when there is nothing under it. */
export function lstatName(name: string): Stats | null {
  try {
    return lstatSync(shmPath(name));
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw e;
  }
}

/** True while the name still refers to the object `st` was taken of (same device and inode). */
export function sameObject(name: string, st: Stats): boolean {
  const now = lstatName(name);
  return now !== null && now.ino === st.ino && now.dev === st.dev;
}

/**
 * Opens the object `name` (read-write, or read-only when `write` is false) and verifies that it is a
 * regular file with one link, owned by the uid in its name. ENOENT when nothing is there; EACCES for a
 * squatted name (see `squatted`) or when this user may not open it.
 */
export function openObject(name: string, write: boolean, kind: ShmKind, key: string): Opened {
  const n = native();
  const owner = nameOwner(name);
  let fd: number;
  try {
    fd = n.shmOpen(name, (write ? n.flags.O_RDWR : n.flags.O_RDONLY) | SAFE, 0);
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'EIO';
    if (code === 'ENOENT') throw new QcopError('ENOENT', `no shared ${kind} '${key}'`);
    const st = lstatName(name);
    const reason = st && foreignReason(st, owner);
    if (st && reason) throw new SquatError(kind, key, name, reason, st.uid);
    throw QcopError.fromSystem(e, `open shared ${kind} '${key}'`);
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (e) {
    try { n.close(fd); } catch { /* closed */ }
    throw e;
  }
  const reason = foreignReason(st, owner);
  if (reason) {
    try { n.close(fd); } catch { /* closed */ }
    throw new SquatError(kind, key, name, reason, st.uid);
  }
  return { fd, st, writable: write, owner };
}

/** True when this process may remove objects under `owner`'s names: that user, or root. */
export function mayRemove(owner: number): boolean {
  const me = currentUid();
  return me === 0 || me === owner;
}

/**
 * Removes whatever squats `name` when it is not its user's own object; root only (in the sticky /dev/shm
 * nobody else could). Returns true when something foreign was removed, false when the name is free or
 * holds the user's own object.
 */
export function removeSquatter(name: string): boolean {
  if (currentUid() !== 0) return false;
  const st = lstatName(name);
  if (!st || !foreignReason(st, nameOwner(name))) return false;
  try {
    if (st.isDirectory()) rmdirSync(shmPath(name));
    else native().shmUnlink(name);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') throw e;
  }
  return true;
}

/**
 * The semaphore id a verified registry names, or why it cannot be trusted: ids are never taken from a
 * file another user can write, and the kernel semaphore's owner and creator must both be the registry's
 * user, so a forged registry can never make us use or remove somebody else's semaphore (SPEC §8).
 */
export function trustedSemid(st: Stats, owner: number, header: Header | null): number | { problem: string; gone: boolean } {
  if (st.mode & 0o022) return { problem: `its registry (mode ${(st.mode & 0o777).toString(8)}) is writable by other users`, gone: false };
  // An unfinished header's id field is 0 or stale, and 0 is a valid id of some other semaphore.
  if (!header || !header.isReady('semaphore')) return { problem: 'its registry was never finished', gone: false };
  const semid = header.get(F.SEMID);
  let stat;
  try {
    stat = native().semStat(semid);
  } catch (e) {
    return { problem: `its semaphore ${semid} is gone (${(e as { code?: string }).code ?? 'EIO'})`, gone: true };
  }
  if (stat.uid !== owner || stat.cuid !== owner || stat.nsems !== 1) {
    return { problem: `semaphore ${semid} belongs to uid ${stat.uid} (created by uid ${stat.cuid}), not uid ${owner}`, gone: false };
  }
  return semid;
}
