// SharedMemory: a named, per-user POSIX shared segment with a crash-safe lock (QSharedMemory without its faults).
import { native } from '../native/index.js';
import { QcopError } from '../protocol/errors.js';
import { F, HEADER_BYTES } from './header.js';
import { SegmentLock, type LockOptions, type LockResult } from './lock.js';
import { systemName, validateKey } from './names.js';
import { resolveUser } from './ids.js';
import { attachEntry, createEntry, releaseEntry, groupOrNone, sys, type CreateOptions, type Entry } from './registry.js';

/** Default largest segment `create` accepts: 1 GiB. */
export const DEFAULT_MAX_SEGMENT_SIZE = 1 << 30;

/** Options of `SharedMemory.create`. */
export interface SegmentCreateOptions extends CreateOptions {
  /** Permission bits, 0o600 by default (0o660 when `group` is given). */
  mode?: number;
  /** Group (gid or name) that gets the group bits of `mode`. */
  group?: number | string;
  /** Largest size accepted, DEFAULT_MAX_SEGMENT_SIZE by default. */
  maxSize?: number;
}

/** Options of `SharedMemory.attach`. */
export interface AttachOptions {
  /** Map the data PROT_READ: a write through `buffer` is a fatal signal, as in C. */
  readOnly?: boolean;
  /**
   * Whose key it is (uid or user name; default this process's user): another user's segment
   * created with `{ group }` and shared with ours (SPEC §9). Only a file that user owns is attached.
   */
  owner?: number | string;
}

function dataOffset(): number {
  return Math.max(HEADER_BYTES, native().pageSize);
}

/** A mapped shared segment; `buffer` is the memory itself, shared by every process attached to `key`. */
export class SharedMemory {
  #buffer: Buffer;
  #data: ArrayBuffer | null;
  #entry: Entry | null;
  readonly #lock: SegmentLock | null;
  /** File size the mapping needs (data offset + size). */
  readonly #end: number;
  #faultsSeen: number;
  #poisoned = false;

  private constructor(readonly key: string, entry: Entry, data: ArrayBuffer, offset: number, size: number, readonly readOnly: boolean) {
    this.#entry = entry;
    this.#data = data;
    this.#buffer = Buffer.from(data, 0, size);
    this.#lock = entry.writable ? new SegmentLock(entry.header, entry.fd) : null;
    this.#end = offset + size;
    this.#faultsSeen = native().guardFaults();
  }

  /**
   * Creates the segment `key` of `size` zeroed bytes; EEXIST when in use (a stale one is taken over),
   * EINVAL/EMSGSIZE for a bad size, EACCES when another user squats the name (root removes the squatter).
   */
  static async create(key: string, size: number, opts: SegmentCreateOptions = {}): Promise<SharedMemory> {
    validateKey(key);
    const max = opts.maxSize ?? DEFAULT_MAX_SEGMENT_SIZE;
    if (!Number.isSafeInteger(size) || size <= 0) throw new QcopError('EINVAL', `segment size must be a positive integer, not ${size}`);
    if (size > max) throw new QcopError('EMSGSIZE', `segment size ${size} exceeds the maximum of ${max} bytes`);
    const gid = groupOrNone(opts.group);
    native();
    const offset = dataOffset();
    const entry = createEntry(systemName('segment', key), 'segment', key, size, offset + size, offset, opts, gid);
    try {
      const data = sys('mmap', (n) => n.mmap(entry.fd, size, offset, false));
      entry.header.markReady();
      return new SharedMemory(key, entry, data, offset, size, false);
    } catch (e) {
      releaseEntry(entry, 'segment');
      throw e;
    }
  }

  /** Attaches the existing segment `key`; ENOENT when there is none, EACCES when another user squats the name. */
  static async attach(key: string, opts: AttachOptions = {}): Promise<SharedMemory> {
    validateKey(key);
    const readOnly = opts.readOnly === true;
    const entry = await attachEntry(systemName('segment', key, opts.owner === undefined ? undefined : resolveUser(opts.owner)), 'segment', key, readOnly);
    try {
      const size = entry.header.size;
      const offset = entry.header.get(F.DATA_OFFSET);
      if (offset < HEADER_BYTES || size <= 0 || offset + size > entry.st.size) {
        throw new QcopError('EINVAL', `shared segment '${key}' has a header that does not fit its file`);
      }
      const data = sys('mmap', (n) => n.mmap(entry.fd, size, offset, readOnly));
      return new SharedMemory(key, entry, data, offset, size, readOnly);
    } catch (e) {
      releaseEntry(entry, 'segment');
      throw e;
    }
  }

  /** The mapped bytes (zero copy); empty after `detach()`. */
  get buffer(): Buffer {
    return this.#buffer;
  }

  /** Usable size in bytes (0 after `detach()`). */
  get size(): number {
    return this.#buffer.length;
  }

  /** True once `detach()` ran. */
  get detached(): boolean {
    return this.#entry === null;
  }

  /**
   * True once the segment was shrunk under this handle (another process of its user, or root,
   * truncated its file): the lost bytes read as zeros, and writes to them reach nobody. The addon's
   * fault guard keeps the process alive where C would die of SIGBUS (docs/SHM.md §10). Seen from the
   * file's size before any access, or from the guard after one; it stays true (detach, attach again).
   * One `fstat` per read: check it after reading what must be trusted.
   */
  get poisoned(): boolean {
    const entry = this.#entry;
    const data = this.#data;
    if (this.#poisoned || !entry || !data) return this.#poisoned;
    const n = native();
    const faults = n.guardFaults();
    if (faults !== this.#faultsSeen) { // some mapping of this process was replaced: is it ours?
      this.#faultsSeen = faults;
      if (n.poisoned(data) || n.poisoned(entry.header.buffer)) return (this.#poisoned = true);
    }
    try {
      if (n.fileSize(entry.fd) < this.#end) this.#poisoned = true;
    } catch {
      this.#poisoned = true;
    }
    return this.#poisoned;
  }

  /**
   * Waits (off the event loop) for the segment's lock; `recovered` when its previous holder died
   * holding it, `poisoned` when the segment was shrunk under this handle (see `poisoned`).
   */
  async lock(opts: LockOptions = {}): Promise<LockResult> {
    const r = await this.#locker().lock(opts);
    return { ...r, poisoned: this.poisoned };
  }

  /** Takes the lock if it is free now; returns null when it is held (also by a pending lock() of this handle). */
  tryLock(): LockResult | null {
    const r = this.#locker().tryLock();
    return r && { ...r, poisoned: this.poisoned };
  }

  /** Releases the lock this handle holds; EINVAL when it holds none. */
  unlock(): void {
    this.#locker().unlock();
  }

  /** Unmaps the segment (releasing the lock if held); the last detach removes it; ECLOSED when already detached. */
  detach(): void {
    const entry = this.#entry;
    if (!entry) throw new QcopError('ECLOSED', `segment '${this.key}' is already detached`);
    this.#entry = null;
    const data = this.#data;
    this.#data = null;
    this.#buffer = Buffer.alloc(0);
    if (data) native().munmap(data);
    const finish = (): void => { releaseEntry(entry, 'segment'); };
    const closing = this.#lock?.close();
    // A native lock wait may still read the header: tear it down once that wait has returned.
    if (closing) void closing.then(finish); else finish();
  }

  #locker(): SegmentLock {
    if (!this.#entry) throw new QcopError('ECLOSED', `segment '${this.key}' is detached`);
    if (!this.#lock) throw new QcopError('EACCES', `segment '${this.key}' is attached read-only without write access to its header`);
    return this.#lock;
  }
}
