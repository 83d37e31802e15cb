// The header at the start of every qcop shm object: layout, field access and the attacher pid table.
import type { NativeApi } from '../native/index.js';
import type { ShmKind } from './names.js';

/** Bytes reserved for the header; the data of a segment starts at max(this, page size). */
export const HEADER_BYTES = 4096;
/** 'QCOP' read as a little-endian int32. */
export const MAGIC = 0x504f4351;
/** Layout version; a different version is treated as foreign and never reused. */
export const VERSION = 1;
/** Set in the lock word while somebody may sleep on it (the rest is the owner pid). */
export const LOCK_WAITERS = 0x40000000;
/** Mask of the owner pid in the lock word. */
export const LOCK_PID_MASK = 0x3fffffff;
/** Number of attacher slots: how many handles may have one object open at once. */
export const SLOTS = 512;

/** Int32 indexes of the header fields (docs/SHM.md "Header"). */
export const F = {
  MAGIC: 0, VERSION: 1, KIND: 2,
  STATE: 3,       // 0 initialising, 1 ready
  CLOSING: 4,     // pid of the process removing the object, 0 when none
  LOCK: 5,        // owner pid | LOCK_WAITERS, 0 when free
  CREATOR_PID: 6, CREATOR_UID: 7,
  SIZE_LO: 8, SIZE_HI: 9, DATA_OFFSET: 10,
  SEMID: 11, KEY_LEN: 12, SLOT_COUNT: 13, CREATED_S: 14,
} as const;

const KEY_AT = 64; // byte offset of the key (255 bytes max)
const SLOTS_AT = 512; // byte offset of the attacher table
const KIND_CODE: Record<ShmKind, number> = { segment: 1, semaphore: 2 };

/** Typed view of one mapped header; every cross-process field goes through Atomics. */
export class Header {
  /** The int32 view over the mapped header page. */
  readonly i32: Int32Array;

  /** Wraps a mapped ArrayBuffer of at least HEADER_BYTES. */
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

  /** Claims a free (or dead) attacher slot for this process and returns its index; -1 when full. */
  register(n: NativeApi): number {
    const base = SLOTS_AT / 4;
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < SLOTS; i++) {
        const v = Atomics.load(this.i32, base + i);
        if (v === 0 || (pass === 1 && !n.alive(v))) {
          if (Atomics.compareExchange(this.i32, base + i, v, process.pid) === v) return i;
        }
      }
    }
    return -1;
  }

  /** Frees the slot this handle holds. */
  unregister(slot: number): void {
    Atomics.compareExchange(this.i32, SLOTS_AT / 4 + slot, process.pid, 0);
  }

  /** Distinct live pids in the attacher table. */
  livePids(n: NativeApi): number[] {
    const base = SLOTS_AT / 4;
    const seen = new Map<number, boolean>();
    for (let i = 0; i < SLOTS; i++) {
      const v = Atomics.load(this.i32, base + i);
      if (v > 0 && !seen.has(v)) seen.set(v, n.alive(v));
    }
    return [...seen].filter(([, live]) => live).map(([pid]) => pid);
  }

  /** Takes the right to remove the object (CLOSING := own pid) unless a live process holds it. */
  claimClosing(n: NativeApi): boolean {
    for (;;) {
      const c = this.get(F.CLOSING);
      if (c === process.pid) return true;
      if (c !== 0 && n.alive(c)) return false;
      if (Atomics.compareExchange(this.i32, F.CLOSING, c, process.pid) === c) return true;
    }
  }

  /** Gives up a CLOSING claim (somebody attached meanwhile). */
  dropClosing(): void {
    Atomics.compareExchange(this.i32, F.CLOSING, process.pid, 0);
  }
}
