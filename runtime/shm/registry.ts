// Lifecycle shared by segments and semaphores: create (taking over stale objects), attach, last-detach removal.
import { fchmodSync, fchownSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { native, type NativeApi } from '../native/index.js';
import { QcopError } from '../protocol/errors.js';
import { F, HEADER_BYTES, Header } from './header.js';
import type { ShmKind } from './names.js';

/** One open registration of a shm object in this process. */
export interface Entry {
  name: string;
  fd: number;
  header: Header;
  slot: number; // -1 when opened read-only without a registration
  created: boolean;
}

/** Runs a native call, turning its errno errors into QcopErrors with the same code. */
export function sys<T>(what: string, fn: (n: NativeApi) => T): T {
  const n = native();
  try {
    return fn(n);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !(e instanceof QcopError)) {
      throw new QcopError(code, `${what}: ${(e as Error).message}`, { cause: e });
    }
    throw e;
  }
}

const YOUNG_MS = 5000; // an unfinished header this young may still be being written
const ATTEMPTS = 2000;

function closeQuiet(n: NativeApi, fd: number): void {
  try { n.close(fd); } catch { /* already closed */ }
}

function unlinkQuiet(n: NativeApi, name: string): void {
  try { n.shmUnlink(name); } catch { /* gone already */ }
}

/** Whether an object (open on fd, header mapped) is unused: no live attacher and not being built. */
function isStale(n: NativeApi, fd: number, header: Header | null, kind: ShmKind): boolean {
  const st = n.fstat(fd);
  if (!header || !header.isReady(kind)) {
    const creator = header ? header.get(F.CREATOR_PID) : 0;
    if (creator > 0) return !n.alive(creator);
    return Date.now() - st.mtimeMs > YOUNG_MS;
  }
  return header.livePids(n).length === 0;
}

/** Removes the object `name` if it is stale; true when it is gone (removed or vanished) afterwards. */
export function removeIfStale(name: string, kind: ShmKind): boolean {
  const n = native();
  let fd: number;
  try {
    fd = n.shmOpen(name, n.flags.O_RDWR, 0);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return true;
    throw e;
  }
  let ab: ArrayBuffer | null = null;
  try {
    const big = n.fstat(fd).size >= HEADER_BYTES;
    if (big) ab = n.mmap(fd, HEADER_BYTES, 0, false);
    const header = ab ? new Header(ab) : null;
    if (!isStale(n, fd, header, kind)) return false;
    if (header && !header.claimClosing(n)) return false;
    if (header && header.isReady(kind) && header.livePids(n).length) { header.dropClosing(); return false; }
    if (kind === 'semaphore' && header && header.isReady(kind)) {
      try { n.semRemove(header.get(F.SEMID)); } catch { /* already removed */ }
    }
    unlinkQuiet(n, name);
    return true;
  } finally {
    if (ab) n.munmap(ab);
    closeQuiet(n, fd);
  }
}

/** Resolves a group name or id to a gid (-1 for none); EINVAL for an unknown name. */
export function resolveGroup(group: number | string | undefined): number {
  if (group === undefined) return -1;
  if (typeof group === 'number' && Number.isInteger(group) && group >= 0) return group;
  if (typeof group === 'string') {
    if (/^\d+$/.test(group)) return Number(group);
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , gid] = line.split(':');
      if (name === group && gid) return Number(gid);
    }
  }
  throw new QcopError('EINVAL', `unknown group ${String(group)}`);
}

/** Sharing options of a new object. */
export interface CreateOptions { mode?: number; group?: number | string }

/** Creates `name` exclusively with `bytes` of backing store, taking over a stale one; EEXIST when it is in use. */
export function createEntry(name: string, kind: ShmKind, key: string, size: number, bytes: number,
  dataOffset: number, opts: CreateOptions, gid: number): Entry {
  const n = native();
  const mode = opts.mode ?? (gid >= 0 ? 0o660 : 0o600);
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = sys('shm_open', (x) => x.shmOpen(name, x.flags.O_RDWR | x.flags.O_CREAT | x.flags.O_EXCL, mode));
    } catch (e) {
      if ((e as QcopError).code === 'EEXIST' && attempt < 8 && removeIfStale(name, kind)) continue;
      if ((e as QcopError).code === 'EEXIST') throw new QcopError('EEXIST', `shared ${kind} '${key}' is in use`);
      throw e;
    }
    let ab: ArrayBuffer | null = null;
    try {
      fchmodSync(fd, mode); // shm_open's mode went through the umask
      if (gid >= 0) fchownSync(fd, process.getuid?.() ?? 0, gid);
      sys('ftruncate', (x) => x.ftruncate(fd, bytes));
      ab = sys('mmap', (x) => x.mmap(fd, HEADER_BYTES, 0, false));
      const header = new Header(ab);
      header.init(kind, key, size, dataOffset, process.getuid?.() ?? 0);
      const slot = header.register(n);
      return { name, fd, header, slot, created: true };
    } catch (e) {
      if (ab) n.munmap(ab);
      unlinkQuiet(n, name);
      closeQuiet(n, fd);
      throw e;
    }
  }
}

/** Opens an existing ready object and registers this handle; ENOENT when there is none. */
export async function attachEntry(name: string, kind: ShmKind, key: string, readOnly: boolean): Promise<Entry> {
  const n = native();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let fd: number;
    let registered = true;
    try {
      fd = n.shmOpen(name, n.flags.O_RDWR, 0);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOENT') throw new QcopError('ENOENT', `no shared ${kind} '${key}'`);
      if (code !== 'EACCES' || !readOnly) throw new QcopError(code ?? 'EIO', `attach '${key}': ${(e as Error).message}`);
      fd = sys('shm_open', (x) => x.shmOpen(name, x.flags.O_RDONLY, 0));
      registered = false; // read permission only: we cannot write our pid into the table
    }
    let ab: ArrayBuffer | null = null;
    let keep = false;
    let retry = false;
    try {
      if (n.fstat(fd).size >= HEADER_BYTES) ab = sys('mmap', (x) => x.mmap(fd, HEADER_BYTES, 0, !registered));
      const header = ab ? new Header(ab) : null;
      if (!header || !header.isReady(kind)) {
        if (isStale(n, fd, header, kind)) throw new QcopError('ENOENT', `no shared ${kind} '${key}' (a creator died)`);
        retry = true; // being initialised: look again shortly
        continue;
      }
      if (!registered) { keep = true; return { name, fd, header, slot: -1, created: false }; }
      const slot = header.register(n);
      if (slot < 0) throw new QcopError('ELIMIT', `shared ${kind} '${key}' has too many attachers`);
      const closing = header.get(F.CLOSING);
      if (closing !== 0 && n.alive(closing)) { header.unregister(slot); retry = true; continue; } // being removed
      if (closing !== 0) Atomics.compareExchange(header.i32, F.CLOSING, closing, 0);
      keep = true;
      return { name, fd, header, slot, created: false };
    } finally {
      if (!keep) {
        if (ab) n.munmap(ab);
        closeQuiet(n, fd);
      }
      if (retry) await sleep(1);
    }
  }
  throw new QcopError('ENOENT', `shared ${kind} '${key}' never became ready`);
}

/** Unregisters the handle; the last one out removes the object (and its semaphore). Returns true when removed. */
export function releaseEntry(entry: Entry, kind: ShmKind): boolean {
  const n = native();
  const { header } = entry;
  let removed = false;
  try {
    if (entry.slot >= 0) {
      header.unregister(entry.slot);
      if (header.livePids(n).length === 0 && header.claimClosing(n)) {
        if (header.livePids(n).length === 0) {
          if (kind === 'semaphore') {
            try { n.semRemove(header.get(F.SEMID)); } catch { /* already gone */ }
          }
          unlinkQuiet(n, entry.name);
          removed = true;
        } else {
          header.dropClosing();
        }
      }
    }
  } finally {
    n.munmap(header.buffer);
    closeQuiet(n, entry.fd);
  }
  return removed;
}
