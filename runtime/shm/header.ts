// The header at the start of every qcop shm object: layout, field access, the attacher table and its kernel-held locks.
import { readlinkSync } from 'node:fs';
import type { NativeApi } from '../native/index.js';
import type { ShmKind } from './names.js';

/** Bytes reserved for the header; the data of a segment starts at max(this, page size). */
export const HEADER_BYTES = 4096;
/** 'QCOP' read as a little-endian int32. */
export const MAGIC = 0x504f4351;
/** Layout version; a different version is treated as foreign and never reused. 2: liveness by OFD locks. */
export const VERSION = 2;
/** Set in the lock word while somebody may sleep on it (the rest is the owner pid). */
export const LOCK_WAITERS = 0x40000000;
/** Mask of the owner pid in the lock word. */
export const LOCK_PID_MASK = 0x3fffffff;
/** Number of attacher slots listed by `qcop shm ls`; more attachers are still attached, only not listed. */
export const SLOTS = 256;

/**
 * Byte offsets of the open-file-description locks (fcntl F_OFD_SETLK) on the object's descriptor:
 * the kernel drops them when the holder's last descriptor goes, so they say who is alive in any pid
 * namespace (docs/SHM.md §4). They are lock ranges, not bytes anyone reads.
 */
export const OFD = {
  /** Every attacher holds a read lock; a remover needs the write lock, so it never removes a live object. */
  PRESENCE: 0,
  /** The holder of the segment lock holds a write lock here. */
  LOCK: 1,
  /** Attacher slot i is owned by whoever holds a write lock at SLOT + i. */
  SLOT: 1024,
} as const;

/** Int32 indexes of the header fields (docs/SHM.md "Header"). */
export const F = {
  MAGIC: 0, VERSION: 1, KIND: 2,
  STATE: 3,       // 0 initialising, 1 ready
  CLOSING: 4,     // reserved (layout 1's removal claim); always 0: removal is arbitrated by OFD.PRESENCE
  LOCK: 5,        // owner pid | LOCK_WAITERS, 0 when free; exclusion itself is the OFD.LOCK byte lock
  CREATOR_PID: 6, CREATOR_UID: 7,
  SIZE_LO: 8, SIZE_HI: 9, DATA_OFFSET: 10,
  SEMID: 11, KEY_LEN: 12, SLOT_COUNT: 13, CREATED_S: 14,
} as const;

const KEY_AT = 64; // byte offset of the key (255 bytes max)
const PIDS_AT = 512; // int32 pid per slot
const PIDNS_AT = PIDS_AT + SLOTS * 4; // int32 pid-namespace inode per slot
const KIND_CODE: Record<ShmKind, number> = { segment: 1, semaphore: 2 };

let ownNamespace: number | undefined;
/** This process's pid namespace (the inode of /proc/self/ns/pid as an int32), 0 when unknown. */
export function pidNamespace(): number {
  if (ownNamespace === undefined) {
    try {
      const link = readlinkSync('/proc/self/ns/pid');
      ownNamespace = Number(/\[(\d+)\]/.exec(link)?.[1] ?? 0) | 0;
    } catch {
      ownNamespace = 0;
    }
  }
  return ownNamespace;
}

/** Typed view of one header (mapped, or a copy read from the file); every cross-process field goes through Atomics. */
export class Header {
  /** The int32 view over the header page. */
  readonly i32: Int32Array;

  /** Wraps an ArrayBuffer of at least HEADER_BYTES. */
  constructor(readonly buffer: ArrayBuffer) {
    this.i32 = new Int32Array(buffer, 0, HEADER_BYTES / 4);
  }

  /** Reads one field. */
  get(field: number): number {
    return Atomics.load(this.i32, field);
  }

  /** Writes one field. */
  set(field: number, value: number): void {
    Atomics.store(this.i32, field, value);
  }

  /** Fills in a fresh header (STATE stays 0 until `markReady`). */
  init(kind: ShmKind, key: string, size: number, dataOffset: number, uid: number): void {
    const keyBytes = Buffer.from(key, 'utf8');
    Buffer.from(this.buffer, KEY_AT, 256).fill(0).set(keyBytes);
    this.set(F.VERSION, VERSION);
    this.set(F.KIND, KIND_CODE[kind]);
    this.set(F.CREATOR_PID, process.pid);
    this.set(F.CREATOR_UID, uid);
    this.set(F.SIZE_LO, size % 0x100000000 | 0);
    this.set(F.SIZE_HI, Math.floor(size / 0x100000000));
    this.set(F.DATA_OFFSET, dataOffset);
    this.set(F.KEY_LEN, keyBytes.length);
    this.set(F.SLOT_COUNT, SLOTS);
    this.set(F.CREATED_S, Math.floor(Date.now() / 1000));
    this.set(F.MAGIC, MAGIC);
  }

  /** Publishes the header to attachers. */
  markReady(): void {
    this.set(F.STATE, 1);
  }

  /** True when the header is a ready qcop header of this version and kind. */
  isReady(kind: ShmKind): boolean {
    return this.get(F.MAGIC) === MAGIC && this.get(F.VERSION) === VERSION &&
      this.get(F.KIND) === KIND_CODE[kind] && this.get(F.STATE) === 1;
  }

  /** The usable size of a segment, in bytes. */
  get size(): number {
    return (this.get(F.SIZE_LO) >>> 0) + this.get(F.SIZE_HI) * 0x100000000;
  }

  /** The key as written by the creator. */
  get key(): string {
    const len = Math.min(255, Math.max(0, this.get(F.KEY_LEN)));
    return Buffer.from(this.buffer, KEY_AT, len).toString('utf8');
  }

  /**
   * Claims a free attacher slot for the open description `fd` (a write lock on its slot byte, then
   * pid and pid namespace in the table) and returns its index; -1 when every slot is taken.
   */
  register(n: NativeApi, fd: number): number {
    for (let i = 0; i < SLOTS; i++) {
      if (!n.ofdLock(fd, OFD.SLOT + i, 1, 2)) continue; // a live attacher owns it
      Atomics.store(this.i32, PIDNS_AT / 4 + i, pidNamespace());
      Atomics.store(this.i32, PIDS_AT / 4 + i, process.pid);
      return i;
    }
    return -1;
  }

  /** Frees the slot this handle holds (the table entry, then its lock). */
  unregister(slot: number, n?: NativeApi, fd?: number): void {
    Atomics.compareExchange(this.i32, PIDS_AT / 4 + slot, process.pid, 0);
    if (n && fd !== undefined) n.ofdLock(fd, OFD.SLOT + slot, 1, 0);
  }

  /**
   * Distinct pids of live attachers in this pid namespace, seen through `fd` (any descriptor of the
   * object not holding slot locks itself). Attachers in another pid namespace are alive but unlisted:
   * their pid numbers mean nothing here.
   */
  livePids(n: NativeApi, fd: number): number[] {
    const ns = pidNamespace();
    const pids = new Set<number>();
    for (let i = 0; i < SLOTS; i++) {
      const pid = Atomics.load(this.i32, PIDS_AT / 4 + i);
      if (pid <= 0 || Atomics.load(this.i32, PIDNS_AT / 4 + i) !== ns) continue;
      if (n.ofdHeld(fd, OFD.SLOT + i, 1) !== 0) pids.add(pid);
    }
    return [...pids].sort((a, b) => a - b);
  }

  /**
   * Every pid the attacher table records in this pid namespace, alive or not: a process killed while
   * attached leaves its pid behind (it never unregistered), which tells whose leftovers an object is.
   */
  recordedPids(): number[] {
    const ns = pidNamespace();
    const pids = new Set<number>();
    for (let i = 0; i < SLOTS; i++) {
      const pid = Atomics.load(this.i32, PIDS_AT / 4 + i);
      if (pid > 0 && Atomics.load(this.i32, PIDNS_AT / 4 + i) === ns) pids.add(pid);
    }
    return [...pids];
  }
}
