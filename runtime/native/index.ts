// Loader of the C addon (prebuilds/linux-<arch>/qcop_native.node) and the typed surface of its functions.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QcopError } from '../protocol/errors.js';

/** Result of `fstat` on a shared-memory descriptor. */
export interface NativeStat { size: number; uid: number; gid: number; mode: number; mtimeMs: number }

/** Values of a System V semaphore (`semStat`). */
export interface SemStat { value: number; uid: number; gid: number; cuid: number; cgid: number; mode: number; nsems: number }

/** Kernel-verified identity of a Unix socket's peer. */
export interface PeerCred { pid: number; uid: number; gid: number }

/** The functions of `qcop_native.node`; every failing system call throws an Error whose `code` is the errno name. */
export interface NativeApi {
  /** Page size of this machine, in bytes. */
  readonly pageSize: number;
  /** Open flags as this platform spells them. */
  readonly flags: { O_RDONLY: number; O_RDWR: number; O_CREAT: number; O_EXCL: number };
  /** shm_open(name, flags | O_CLOEXEC, mode) and returns the descriptor. */
  shmOpen(name: string, flags: number, mode: number): number;
  /** shm_unlink(name). */
  shmUnlink(name: string): void;
  /** ftruncate(fd, size). */
  ftruncate(fd: number, size: number): void;
  /** posix_fallocate(fd, offset, length): pages backed now, so a full /dev/shm is ENOSPC here, not SIGBUS at the first write. */
  fallocate(fd: number, offset: number, length: number): void;
  /** True when a SIGBUS inside this mapping (its file shrank) replaced it with zero pages (guard.c): its bytes are not the file's. */
  poisoned(buffer: ArrayBuffer): boolean;
  /** How many mappings of this process the fault guard has poisoned so far. */
  guardFaults(): number;
  /** fstat(fd).st_size alone (cheap enough to re-check before every message). */
  fileSize(fd: number): number;
  /** fstat(fd) reduced to what shared memory needs. */
  fstat(fd: number): NativeStat;
  /** close(fd). */
  close(fd: number): void;
  /** mmap(MAP_SHARED) of `length` bytes at `offset`, PROT_READ only when `readOnly`, as an external ArrayBuffer. */
  mmap(fd: number, length: number, offset: number, readOnly: boolean): ArrayBuffer;
  /** Detaches the ArrayBuffer (every view gets length 0) and unmaps once no wait still uses it. */
  munmap(buffer: ArrayBuffer): void;
  /** Makes pending waits on this mapping return -2 (cancelled) within one poll period, without unmapping. */
  cancel(buffer: ArrayBuffer): void;
  /** True when `pid` exists and is not a zombie. */
  alive(pid: number): boolean;
  /** Waits on a libuv worker while the int32 at byteOffset equals expected: 0 woken, 1 changed, -1 timeout, -2 unmapped. */
  futexWait(buffer: ArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): Promise<number>;
  /** Wakes up to `count` futex waiters on that int32 and returns how many woke. */
  futexWake(buffer: ArrayBuffer, byteOffset: number, count: number): number;
  /** Creates a private one-semaphore System V set with `initial` units (gid -1: keep) and returns its id. */
  semCreate(mode: number, initial: number, gid: number): number;
  /** Applies `undoDelta` with SEM_UNDO and `plainDelta` without, atomically; false when `nowait` and it would block. */
  semOp(semid: number, undoDelta: number, plainDelta: number, nowait: boolean): boolean;
  /** Takes one unit with SEM_UNDO on a worker: 0 acquired, -1 timeout (timeoutMs < 0 waits forever). */
  semAcquire(semid: number, timeoutMs: number): Promise<number>;
  /** semctl IPC_STAT + GETVAL. */
  semStat(semid: number): SemStat;
  /** semctl IPC_RMID. */
  semRemove(semid: number): void;
  /** getsockopt(SO_PEERCRED) on a connected Unix socket descriptor. */
  peerCred(fd: number): PeerCred;
  /** Sends one datagram to $NOTIFY_SOCKET (path or '@abstract'); false when there is none. */
  sdNotify(text: string): boolean;
  /** F_OFD_SETLK on [start, start+len) (type 0 unlock, 1 read, 2 write); false when another open description holds a conflicting lock. */
  ofdLock(fd: number, start: number, len: number, type: 0 | 1 | 2): boolean;
  /** F_OFD_GETLK: 0 when no other open description holds a lock on the range, else 1 (read) or 2 (write). */
  ofdHeld(fd: number, start: number, len: number): 0 | 1 | 2;
  /** The segment lock on a worker: byte lock `lockByte` of fd, then the word: 0 acquired, 1 recovered (holder died), -1 timeout, -2 cancelled. */
  ownedLockAcquire(buffer: ArrayBuffer, wordOffset: number, fd: number, lockByte: number, pid: number, timeoutMs: number): Promise<number>;
}

const FILE = 'qcop_native.node';
let cached: NativeApi | undefined;
let failure: QcopError | undefined;

/** This module's folder; undefined inside a CommonJS bundle, where import.meta.url is empty. */
function moduleDir(): string | undefined {
  try {
    return dirname(fileURLToPath(import.meta.url));
  } catch {
    return undefined;
  }
}

/** Folders that may hold `prebuilds/`: the package root (walking up from this file) and the main script's folder. */
function candidates(): string[] {
  const sub = join('prebuilds', `${process.platform}-${process.arch}`, FILE);
  const dirs: string[] = [];
  for (let d = moduleDir(); d; ) {
    dirs.push(d);
    const up = dirname(d);
    d = up === d ? undefined : up;
  }
  const main = process.argv[1] ? dirname(process.argv[1]) : undefined;
  if (main) dirs.push(main, dirname(main));
  return [...new Set(dirs)].map((d) => join(d, sub));
}

function howToBuild(reason: string): QcopError {
  return new QcopError('ENONATIVE',
    `shared memory needs the native addon (${reason}); build it with \`npm run build:native\` ` +
    '(host only: `node scripts/build-native.mjs --host`, needs a C compiler: apt-get install gcc; ' +
    'cross builds: apt-get install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf)');
}

/** Loads the addon once and returns it; throws a QcopError `ENONATIVE` saying how to build it when it cannot. */
export function loadNative(): NativeApi {
  if (cached) return cached;
  if (failure) throw failure;
  if (process.env.QCOP_NATIVE === 'off') throw howToBuild('QCOP_NATIVE=off');
  // The base only anchors relative specifiers; every candidate is absolute.
  const require = createRequire(join(moduleDir() ?? process.cwd(), 'loader.js'));
  const tried: string[] = [];
  let lastError: unknown;
  for (const file of candidates()) {
    if (!existsSync(file)) continue;
    tried.push(file);
    try {
      cached = require(file) as NativeApi;
      return cached;
    } catch (e) {
      lastError = e;
    }
  }
  const reason = tried.length
    ? `${tried.join(', ')} did not load: ${(lastError as Error)?.message ?? lastError}`
    : `no prebuilds/${process.platform}-${process.arch}/${FILE} found`;
  failure = howToBuild(reason);
  throw failure;
}

/** The addon, or a thrown QcopError `ENONATIVE` (same as loadNative; the short name for call sites). */
export function native(): NativeApi {
  return cached ?? loadNative();
}

/** True when the addon loads on this machine (and QCOP_NATIVE is not `off`). */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}
