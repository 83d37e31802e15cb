// The sender's shared-memory pool (segments, first-fit slots) and the receiver's cache of mapped segments (PROTOCOL 8).
import { randomBytes } from 'node:crypto';
import { DEFAULT_MAX_POOL_BYTES } from '../protocol/constants.js';
import { QcopError } from '../protocol/errors.js';
import { POOL_KEY_PREFIX, createPoolSegment, mapPoolView, type PoolSegment, type PoolView } from '../shm/pool-segment.js';

/** A slot handed out by `SendPool.alloc`: where the encoded data goes. */
export interface Slot {
  /** The id the broker echoes in Freed (PROTOCOL 8.5). */
  id: number;
  /** Index of the segment, as announced with Pool (PROTOCOL 8.2). */
  segment: number;
  offset: number;
  length: number;
  /** The slot's bytes inside the mapped segment. */
  buffer: Buffer;
}

interface Segment { index: number; seg: PoolSegment; free: Array<[number, number]>; used: number; loans: Map<number, Slot>; dropped: boolean; withdrawn?: true }

/**
 * Bytes a loan keeps in front of the buffer it hands out: the CBOR byte-string head (5 bytes)
 * goes at its end, so the data start 8-byte aligned and the message is head + data, contiguous.
 */
export const LOAN_HEAD = 8;

/** A loaned buffer given back to `send`: its slot, or (the pool was dropped meanwhile) a private copy of its bytes. */
export type Claimed = { slot: Slot; copy?: undefined } | { slot?: undefined; copy: Buffer };

const ALIGN = 64;
const SEGMENT_BYTES = 16 << 20;
const MIB = 1 << 20;
/** Distinguishes the pools of one process across clients and reconnections, and from a previous process with the same pid. */
const PREFIX = `${POOL_KEY_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
let segmentSeq = 0;

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** Segments created on demand up to `maxPoolBytes`; slots return through `free()` when the broker says Freed. */
export class SendPool {
  private readonly segments = new Map<number, Segment>();
  private readonly slots = new Map<number, { segment: Segment; offset: number; length: number; lagging: boolean }>();
  /** Segments by the ArrayBuffer of their mapping, to find the loan a buffer belongs to. */
  private readonly byMemory = new Map<ArrayBuffer, Segment>();
  private usedBytes = 0;
  private laggingBytes = 0;
  private outstandingLoans = 0;
  /** Bytes of slots lent and not yet sent: the producer's own, not in flight. */
  private loanedBytes = 0;
  private nextSlot = 0;
  private nextIndex = 0;
  private total = 0;
  maxPoolBytes = DEFAULT_MAX_POOL_BYTES;
  group: number | undefined;

  /** `announce` tells the broker about a new segment (before any slot of it is used); `retire` withdraws one. */
  constructor(
    private readonly announce: (index: number, key: string) => void,
    private readonly retire: (index: number) => void,
  ) {}

  /** Slots handed out and not yet freed, and their bytes. */
  get inUse(): { slots: number; bytes: number } {
    return { slots: this.slots.size, bytes: this.usedBytes };
  }

  /**
   * True while a quarter of the pool or more is in flight, not counting slots held only by
   * lagging receivers: `send` then returns false (PROTOCOL 8.5). The broker drops for a receiver
   * holding a quarter, so a receiver that keeps up with a producer that waits for 'drain' is never
   * dropped for, and a stopped one never holds the producer back.
   */
  get pressured(): boolean {
    return this.usedBytes - this.laggingBytes - this.loanedBytes >= this.maxPoolBytes / 4;
  }

  /** PROTOCOL 8.5 lagging: the slot stays in use but no longer counts towards `pressured`. */
  lag(id: number): void {
    const slot = this.slots.get(id);
    if (!slot || slot.lagging) return;
    slot.lagging = true;
    this.laggingBytes += slot.length;
  }

  /** A slot of `length` bytes, or null when the pool is full right now (retry after a free); QcopError ENOSPC when /dev/shm is. */
  alloc(length: number): Slot | null {
    const need = roundUp(length, ALIGN);
    for (const s of this.segments.values()) {
      const slot = this.take(s, need, length);
      if (slot) return slot;
    }
    const s = this.grow(need);
    return s ? this.take(s, need, length) : null;
  }

  /**
   * Lends a slot for `length` bytes of data, written by the caller in place (zero copy): the
   * buffer starts LOAN_HEAD bytes into the slot. Null when the pool is full right now.
   */
  loan(length: number): Buffer | null {
    const slot = this.alloc(LOAN_HEAD + length);
    if (!slot) return null;
    const entry = this.slots.get(slot.id)!;
    const buffer = slot.buffer.subarray(LOAN_HEAD);
    entry.segment.loans.set(buffer.byteOffset, slot);
    this.outstandingLoans++;
    this.loanedBytes += entry.length;
    return buffer;
  }

  /** Loans handed out and not yet claimed or given back (send() looks a buffer up only while there are any). */
  get outstanding(): number {
    return this.outstandingLoans;
  }

  /**
   * Takes back the loan `data` (or a prefix of it) belongs to; undefined when it is not a loan of
   * this pool. A loan whose segment was dropped (the broker went away) comes back as a copy.
   */
  claim(data: Uint8Array): Claimed | undefined {
    const taken = this.takeLoan(data, true);
    if (!taken) return undefined;
    if (!taken.segment.dropped) return { slot: taken.slot };
    const copy = Buffer.from(data);
    this.closeDropped(taken.segment);
    return { copy };
  }

  /** Gives a loan back unsent; false when `data` is not an outstanding loan. */
  unloan(data: Uint8Array): boolean {
    const taken = this.takeLoan(data, false);
    if (!taken) return false;
    if (taken.segment.dropped) this.closeDropped(taken.segment);
    else this.free(taken.slot.id);
    return true;
  }

  /** Ends the loan `data` starts, if it is one (and, when `prefix`, `data` lies within it). */
  private takeLoan(data: Uint8Array, prefix: boolean): { segment: Segment; slot: Slot } | undefined {
    const segment = this.byMemory.get(data.buffer as ArrayBuffer);
    const slot = segment?.loans.get(data.byteOffset);
    if (!segment || !slot || (prefix && data.length > slot.length - LOAN_HEAD)) return undefined;
    segment.loans.delete(data.byteOffset);
    this.outstandingLoans--;
    // A dropped segment's slots were forgotten with the pool, and their bytes with them.
    if (!segment.dropped) this.loanedBytes -= this.slots.get(slot.id)!.length;
    return { segment, slot };
  }

  /** Returns a slot (Freed from the broker); false for an id this pool did not hand out. */
  free(id: number): boolean {
    const slot = this.slots.get(id);
    if (!slot) return false;
    this.slots.delete(id);
    this.usedBytes -= slot.length;
    if (slot.lagging) this.laggingBytes -= slot.length;
    const s = slot.segment;
    s.used -= slot.length;
    if (s.withdrawn) {
      if (s.used === 0 && s.loans.size === 0) this.closeSegment(s);
      return true;
    }
    const free = s.free;
    let i = 0;
    while (i < free.length && free[i]![0] < slot.offset) i++;
    free.splice(i, 0, [slot.offset, slot.length]);
    // Coalesce with the neighbours so large slots stay possible.
    if (i + 1 < free.length && free[i]![0] + free[i]![1] === free[i + 1]![0]) {
      free[i]![1] += free[i + 1]![1];
      free.splice(i + 1, 1);
    }
    if (i > 0 && free[i - 1]![0] + free[i - 1]![1] === free[i]![0]) {
      free[i - 1]![1] += free[i]![1];
      free.splice(i, 1);
    }
    return true;
  }

  /**
   * Forgets every slot and segment (the broker went away: a new one gets a fresh pool). A segment
   * with loans outstanding stays mapped until they are sent (as copies) or given back.
   */
  reset(): void {
    for (const s of this.segments.values()) {
      if (s.loans.size > 0) s.dropped = true;
      else this.closeSegment(s);
    }
    this.segments.clear();
    this.slots.clear();
    this.usedBytes = 0;
    this.laggingBytes = 0;
    this.loanedBytes = 0;
    this.total = 0;
  }

  private closeDropped(s: Segment): void {
    if (s.loans.size === 0) this.closeSegment(s);
  }

  /** Takes a shrunk segment out of use: the broker is told, the mapping goes with its last slot. */
  private withdraw(s: Segment): void {
    this.segments.delete(s.index);
    this.total -= s.seg.size;
    this.retire(s.index);
    s.withdrawn = true;
    if (s.used === 0 && s.loans.size === 0) this.closeSegment(s);
  }

  /** Unmaps a segment; one with no slot in use (none in flight) loses its name at once (docs/SHM.md §8). */
  private closeSegment(s: Segment): void {
    this.byMemory.delete(s.seg.buffer.buffer as ArrayBuffer);
    s.seg.close(s.used === 0);
  }

  private take(s: Segment, need: number, length: number): Slot | null {
    const free = s.free;
    for (let i = 0; i < free.length; i++) {
      const range = free[i]!;
      if (range[1] < need) continue;
      const offset = range[0];
      // ENOSPC here, before the slot is taken, rather than SIGBUS at the write. A segment shrunk under its
      // producer is never grown back (docs/SHM.md §10): it is withdrawn, and a new one takes over.
      if (!s.seg.reserve(offset + need)) {
        this.withdraw(s);
        return null;
      }
      if (range[1] === need) free.splice(i, 1);
      else {
        range[0] += need;
        range[1] -= need;
      }
      s.used += need;
      this.nextSlot = this.nextSlot >= 0xffffffff ? 1 : this.nextSlot + 1;
      this.slots.set(this.nextSlot, { segment: s, offset, length: need, lagging: false });
      this.usedBytes += need;
      return { id: this.nextSlot, segment: s.index, offset, length, buffer: s.seg.buffer.subarray(offset, offset + length) };
    }
    return null;
  }

  /** Adds a segment able to hold `need`, retiring idle segments when the pool limit is in the way. */
  private grow(need: number): Segment | null {
    if (need > this.maxPoolBytes) return null;
    let size = Math.max(Math.min(SEGMENT_BYTES, this.maxPoolBytes - this.total), roundUp(need, MIB));
    if (this.total + size > this.maxPoolBytes) {
      for (const s of [...this.segments.values()].sort((a, b) => b.seg.size - a.seg.size)) {
        if (this.total + size <= this.maxPoolBytes) break;
        if (s.used > 0) continue;
        this.segments.delete(s.index);
        this.total -= s.seg.size;
        this.closeSegment(s);
        this.retire(s.index);
      }
      size = Math.min(size, Math.floor((this.maxPoolBytes - this.total) / ALIGN) * ALIGN);
      if (size < need) return null;
    }
    const index = this.nextIndex++;
    const key = `${PREFIX}/${++segmentSeq}`;
    const seg = createPoolSegment(key, size, this.group);
    const s: Segment = { index, seg, free: [[0, size]], used: 0, loans: new Map(), dropped: false };
    this.segments.set(index, s);
    this.byMemory.set(seg.buffer.buffer as ArrayBuffer, s);
    this.total += size;
    this.announce(index, key);
    return s;
  }
}

interface CachedView { view: PoolView; refs: number; idleSince: number }

/** How long a receiver keeps an unused mapping: a departed sender's memory is given back soon after. */
const VIEW_IDLE_MS = 2000;

/** A receiver's read-only mappings of senders' segments, by segment name; unused ones are unmapped after a while. */
export class ViewCache {
  private readonly views = new Map<string, CachedView>();
  private timer: NodeJS.Timeout | null = null;

  /**
   * The bytes of one slot (zero copy), `intact()` (docs/SHM.md §10: false once the sender shrank
   * its segment under them) and a `done` to call once when they are no longer read. A slot outside
   * the segment is EBADSLOT; a segment shrunk under it fails to map afresh.
   */
  open(name: string, size: number, offset: number, length: number): { bytes: Buffer; intact: () => boolean; done: () => void } {
    let v = this.views.get(name);
    if (v && (v.view.size !== size || !v.view.intact(offset, length))) {
      // A different segment under a reused name, or one shrunk under us: map afresh, the old one goes once unused.
      if (v.refs === 0) v.view.close();
      this.views.delete(name);
      v = undefined;
    }
    if (!v) {
      v = { view: mapPoolView(name), refs: 0, idleSince: 0 };
      this.views.set(name, v);
      this.arm();
    }
    // A fresh mapping was checked against the file's size as it was made.
    if (offset + length > v.view.size) throw new QcopError('EBADSLOT', `slot ${offset}+${length} lies outside segment ${name}`);
    const cached = v;
    cached.refs++;
    let once = false;
    return {
      bytes: cached.view.buffer.subarray(offset, offset + length),
      intact: () => cached.view.intact(offset, length),
      done: () => {
        if (once) return;
        once = true;
        if (--cached.refs === 0) {
          cached.idleSince = Date.now();
          if (this.views.get(name) !== cached) cached.view.close();
        }
      },
    };
  }

  /** Unmaps everything (client closed). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const v of this.views.values()) v.view.close();
    this.views.clear();
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweep(), VIEW_IDLE_MS / 2);
    this.timer.unref?.();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [name, v] of this.views) {
      if (v.refs === 0 && now - v.idleSince >= VIEW_IDLE_MS) {
        v.view.close();
        this.views.delete(name);
      }
    }
    if (this.views.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
