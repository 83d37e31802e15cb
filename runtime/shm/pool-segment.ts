// Segments of a message pool (docs/SHM.md §8): synchronous create, broker attach, receiver read-only views.
import { native } from '../native/index.js';
import { QcopError } from '../protocol/errors.js';
import { F, HEADER_BYTES, Header } from './header.js';
import { systemName, validateKey } from './names.js';
import { createEntry, releaseEntry, resolveGroup, sys, type Entry } from './registry.js';

/** A pool segment mapped by its creator (read-write) or by the broker (data read-only, registered as attacher). */
export interface PoolSegment {
  /** The shm_open name, `/qcop.<uid>.m.<escaped key>`: what receivers map. */
  readonly name: string;
  /** Usable bytes. */
  readonly size: number;
  /** The data, zero copy. */
  readonly buffer: Buffer;
  /** Unmaps and unregisters; the last attacher out removes the segment. */
  close(): void;
}

/** A receiver's read-only mapping of a pool segment: it does not register, so it never keeps the name alive. */
export interface PoolView {
  readonly size: number;
  readonly buffer: Buffer;
  close(): void;
}

function segmentOf(entry: Entry, data: ArrayBuffer, size: number): PoolSegment {
  let closed = false;
  return {
    name: entry.name,
    size,
    buffer: Buffer.from(data, 0, size),
    close() {
      if (closed) return;
      closed = true;
      native().munmap(data);
      releaseEntry(entry, 'segment');
    },
  };
}

/**
 * Creates a pool segment synchronously (send() cannot wait). Mode 0600, or 0660 with the
 * broker's group so that exactly those who may receive can read it (SPEC §3). A stale
 * segment of the same key (a previous process with this pid) is taken over.
 */
export function createPoolSegment(key: string, size: number, group?: number | string): PoolSegment {
  validateKey(key);
  const n = native();
  const gid = resolveGroup(group);
  const offset = Math.max(HEADER_BYTES, n.pageSize);
  const entry = createEntry(systemName('segment', key), 'segment', key, size, offset + size, offset, {}, gid);
  try {
    const data = sys('mmap', (x) => x.mmap(entry.fd, size, offset, false));
    entry.header.markReady();
    return segmentOf(entry, data, size);
  } catch (e) {
    releaseEntry(entry, 'segment');
    throw e;
  }
}

/**
 * The broker's attachment to a client's pool segment: registered (so the segment outlives a
 * crashed sender until the broker lets go), data mapped read-only. The owner must be `uid`
 * (the peer's kernel-verified uid), so a client cannot make the broker read another user's memory.
 */
export function attachPoolSegment(key: string, uid: number): PoolSegment {
  validateKey(key);
  const n = native();
  const name = systemName('segment', key, uid);
  const fd = sys(`shm_open ${name}`, (x) => x.shmOpen(name, x.flags.O_RDWR, 0));
  let ab: ArrayBuffer | null = null;
  let slot = -1;
  try {
    const st = n.fstat(fd);
    if (st.uid !== uid) throw new QcopError('EACCES', `pool segment ${name} is not owned by uid ${uid}`);
    if (st.size < HEADER_BYTES) throw new QcopError('ENOENT', `pool segment ${name} has no header`);
    ab = sys('mmap', (x) => x.mmap(fd, HEADER_BYTES, 0, false));
    const header = new Header(ab);
    if (!header.isReady('segment')) throw new QcopError('ENOENT', `pool segment ${name} is not ready`);
    const size = header.size;
    const offset = header.get(F.DATA_OFFSET);
    if (offset + size > st.size) throw new QcopError('EINVAL', `pool segment ${name} is shorter than its header says`);
    slot = header.register(n);
    if (slot < 0) throw new QcopError('ELIMIT', `pool segment ${name} has too many attachers`);
    const closing = header.get(F.CLOSING);
    if (closing !== 0 && n.alive(closing)) throw new QcopError('ENOENT', `pool segment ${name} is being removed`);
    const data = sys('mmap', (x) => x.mmap(fd, size, offset, true));
    const entry: Entry = { name, fd, header, slot, created: false };
    return segmentOf(entry, data, size);
  } catch (e) {
    if (ab) {
      if (slot >= 0) new Header(ab).unregister(slot);
      n.munmap(ab);
    }
    try { n.close(fd); } catch { /* closed */ }
    throw e;
  }
}

/**
 * Maps a pool segment's data read-only without registering (receivers): the mapping stays
 * valid after the name is unlinked, and a receiver never keeps a departed sender's pool alive.
 */
export function mapPoolView(name: string): PoolView {
  if (!/^\/qcop\.\d+\.m\.[^/]+$/.test(name)) throw new QcopError('EINVAL', `'${name}' is not a pool segment name`);
  const n = native();
  const fd = sys(`shm_open ${name}`, (x) => x.shmOpen(name, x.flags.O_RDONLY, 0));
  try {
    const st = n.fstat(fd);
    if (st.size < HEADER_BYTES) throw new QcopError('ENOENT', `pool segment ${name} has no header`);
    const head = sys('mmap', (x) => x.mmap(fd, HEADER_BYTES, 0, true));
    let size: number;
    let offset: number;
    try {
      const header = new Header(head);
      if (!header.isReady('segment')) throw new QcopError('ENOENT', `pool segment ${name} is not ready`);
      size = header.size;
      offset = header.get(F.DATA_OFFSET);
    } finally {
      n.munmap(head);
    }
    if (offset + size > st.size) throw new QcopError('EINVAL', `pool segment ${name} is shorter than its header says`);
    const data = sys('mmap', (x) => x.mmap(fd, size, offset, true));
    let closed = false;
    return {
      size,
      buffer: Buffer.from(data, 0, size),
      close() {
        if (closed) return;
        closed = true;
        n.munmap(data);
      },
    };
  } finally {
    try { n.close(fd); } catch { /* closed */ }
  }
}
