// The durable store: append-only log segments under stateDir, replayed at start, compacted as messages are consumed (docs/DURABLE.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QcopError } from '../../protocol/errors.js';
import { SEGMENT_MAGIC, RecordType, encodeRecord, scanSegment, type Rec } from './records.js';

/** A segment is closed and a new one started past this size (docs/DURABLE.md §4). */
export const SEGMENT_BYTES = 4 << 20;

export interface Segment {
  index: number;
  file: string;
  size: number;
  /** Records in it that still matter: stored messages not consumed, retained values not replaced. */
  live: number;
  liveBytes: number;
}

/** A message of a queued channel as the store holds it. */
export interface StoredMsg {
  seq: number;
  channel: string;
  message: string;
  data: Buffer;
  deliveries: number;
  segment: Segment;
  bytes: number;
}

export interface RetainedRec {
  message: string;
  data: Buffer;
  segment: Segment;
  bytes: number;
}

export interface StoreOptions {
  durability: 'sync' | 'batch';
  syncIntervalMs: number;
  maxStoredBytes: number;
}

const NAME_RE = /^(\d{10})\.qlog$/;

/** The log of one broker's stateDir. Appends throw ENOSPC (disk full) or ENOBUFS (maxStoredBytes) and then leave the file as it was. */
export class Store {
  readonly messages = new Map<number, StoredMsg>();
  readonly retained = new Map<string, RetainedRec>();
  /** Torn or corrupt records found at start (each discarded, with everything after it in its segment). */
  readonly problems: string[] = [];
  nextSeq = 1;
  storedBytes = 0;
  private segments: Segment[] = [];
  private fd = -1;
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private compacting = false;
  /** During replay: the highest delivered seq per channel. */
  private readonly watermarks = new Map<string, number>();
  private syncing = false;
  private nextWaiters: Array<(err: Error | null) => void> = [];
  /** Descriptors of closed segments, closed once the fdatasync in flight on them returned. */
  private toClose: number[] = [];

  constructor(readonly dir: string, private readonly opts: StoreOptions) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.replay();
    this.openHead();
    if (opts.durability === 'batch') {
      this.timer = setInterval(() => this.sync(), opts.syncIntervalMs);
      this.timer.unref?.();
    }
  }

  /** Stored messages (not yet consumed). */
  get storedMessages(): number {
    return this.messages.size;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /**
   * Stores a message; returns it with its sequence number. With sync durability it is on disk
   * once `onDisk` is called (a group commit: one fdatasync, off the event loop, for every message
   * written meanwhile); with batch durability `onDisk` is called at once.
   */
  append(channel: string, message: string, data: Buffer, onDisk: (err: Error | null) => void): StoredMsg {
    const seq = this.nextSeq;
    const rec = encodeRecord({ type: RecordType.Msg, seq, deliveries: 0, channel, message, data });
    this.checkRoom(rec.length);
    const seg = this.write(rec, false);
    if (this.opts.durability === 'sync') this.afterSync(onDisk);
    else queueMicrotask(() => onDisk(null));
    this.nextSeq++;
    const m: StoredMsg = { seq, channel, message, data, deliveries: 0, segment: seg, bytes: rec.length };
    this.live(seg, rec.length);
    this.messages.set(seq, m);
    return m;
  }

  /** A message is consumed: acknowledged by every receiver, or moved to the dead letters. */
  done(m: StoredMsg): void {
    if (!this.messages.delete(m.seq)) return;
    this.dead(m.segment, m.bytes);
    this.writeQuiet(encodeRecord({ type: RecordType.Done, seq: m.seq }));
    this.compact();
  }

  /** Records a message's delivery count (it goes out again after a disconnect or crash). */
  count(m: StoredMsg): void {
    if (this.messages.has(m.seq)) this.writeQuiet(encodeRecord({ type: RecordType.Count, seq: m.seq, deliveries: m.deliveries }));
  }

  /** Every message of `channel` up to `seq` was delivered (so after a crash they come again marked redelivered). */
  delivered(channel: string, seq: number): void {
    this.writeQuiet(encodeRecord({ type: RecordType.Delivered, seq, channel }));
  }

  /** Keeps the retained value of a queued channel (empty data: clears it). Throws like append. */
  retain(channel: string, message: string, data: Buffer): void {
    const old = this.retained.get(channel);
    if (data.length === 0) {
      if (!old) return;
      this.write(encodeRecord({ type: RecordType.Unretain, channel }), true);
      this.retained.delete(channel);
      this.dead(old.segment, old.bytes);
      return;
    }
    const rec = encodeRecord({ type: RecordType.Retain, channel, message, data });
    this.checkRoom(rec.length - (old?.bytes ?? 0));
    const seg = this.write(rec, true);
    if (old) this.dead(old.segment, old.bytes);
    this.live(seg, rec.length);
    this.retained.set(channel, { message, data, segment: seg, bytes: rec.length });
  }

  /** Calls `cb` once everything written so far is on disk: joins the next group commit. */
  private afterSync(cb: (err: Error | null) => void): void {
    this.nextWaiters.push(cb);
    if (!this.syncing) this.groupSync();
  }

  private groupSync(): void {
    if (this.nextWaiters.length === 0 || this.fd < 0) return;
    const waiters = this.nextWaiters;
    this.nextWaiters = [];
    this.syncing = true;
    this.dirty = false;
    fs.fdatasync(this.fd, (err) => {
      this.syncing = false;
      for (const fd of this.toClose.splice(0)) fs.close(fd, () => {});
      for (const w of waiters) w(err ? QcopError.fromSystem(err, `cannot sync ${this.head.file}`) : null);
      this.groupSync();
    });
  }

  /** Writes what batch durability still holds to disk. */
  sync(): void {
    if (!this.dirty || this.fd < 0) return;
    this.dirty = false;
    try {
      fs.fdatasyncSync(this.fd);
    } catch {
      this.dirty = true;
    }
  }

  close(): void {
    for (const w of this.nextWaiters.splice(0)) w(new QcopError('ECLOSED', 'the broker is closing'));
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sync();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private checkRoom(bytes: number): void {
    if (this.storedBytes + bytes > this.opts.maxStoredBytes) {
      throw new QcopError('ENOBUFS', `the durable store is full (maxStoredBytes ${this.opts.maxStoredBytes}, ${this.storedBytes} stored)`);
    }
  }

  private live(seg: Segment, bytes: number): void {
    seg.live++;
    seg.liveBytes += bytes;
    this.storedBytes += bytes;
  }

  private dead(seg: Segment, bytes: number): void {
    seg.live--;
    seg.liveBytes -= bytes;
    this.storedBytes -= bytes;
  }

  private get head(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** Appends one record to the head segment; on failure the file is cut back and ENOSPC (or the system's code) thrown. */
  private write(rec: Buffer, durable: boolean): Segment {
    if (this.head.size >= SEGMENT_BYTES) this.roll();
    const seg = this.head;
    try {
      let done = 0;
      while (done < rec.length) done += fs.writeSync(this.fd, rec, done, rec.length - done, seg.size + done);
      if (durable && this.opts.durability === 'sync') fs.fdatasyncSync(this.fd);
      else this.dirty = true;
    } catch (err) {
      try {
        fs.ftruncateSync(this.fd, seg.size);
      } catch {
        // the next start discards the torn record
      }
      throw QcopError.fromSystem(err, `cannot store in ${seg.file}`);
    }
    seg.size += rec.length;
    return seg;
  }

  /** A bookkeeping record (done, count): losing one to a full disk means a duplicate, never a loss. */
  private writeQuiet(rec: Buffer): void {
    try {
      this.write(rec, false);
    } catch {
      // at-least-once still holds
    }
  }

  /** Starts a new head segment. */
  private roll(): void {
    if (this.fd >= 0) {
      // Everything of the old segment is on disk before the new one starts (waiters of the next group included).
      fs.fdatasyncSync(this.fd);
      if (this.syncing) this.toClose.push(this.fd);
      else fs.closeSync(this.fd);
    }
    const index = (this.segments.length ? this.head.index : 0) + 1;
    const file = path.join(this.dir, `${String(index).padStart(10, '0')}.qlog`);
    this.fd = fs.openSync(file, 'w+', 0o600);
    fs.writeSync(this.fd, SEGMENT_MAGIC, 0, SEGMENT_MAGIC.length, 0);
    fs.fdatasyncSync(this.fd);
    syncDir(this.dir);
    this.segments.push({ index, file, size: SEGMENT_MAGIC.length, live: 0, liveBytes: 0 });
  }

  /**
   * Drops the oldest segments once nothing in them matters; copies the few live records of a
   * mostly consumed oldest segment forward first. Only the oldest goes, so a Done record never
   * disappears before the message it ends (docs/DURABLE.md §4).
   */
  private compact(): void {
    if (this.compacting) return;
    this.compacting = true;
    try {
      while (this.segments.length > 1) {
        const old = this.segments[0]!;
        if (old.live > 0) {
          if (old.liveBytes > SEGMENT_BYTES / 4 || this.segments.length < 3) return;
          this.copyForward(old);
          if (old.live > 0) return;
          fs.fdatasyncSync(this.fd); // the copies are on disk before the originals go
        }
        fs.rmSync(old.file, { force: true });
        this.segments.shift();
      }
    } catch {
      // a full disk: compaction waits for the next consumed message
    } finally {
      this.compacting = false;
    }
  }

  private copyForward(old: Segment): void {
    for (const m of [...this.messages.values()].filter((x) => x.segment === old).sort((a, b) => a.seq - b.seq)) {
      const rec = encodeRecord({ type: RecordType.Msg, seq: m.seq, deliveries: m.deliveries, channel: m.channel, message: m.message, data: m.data });
      const seg = this.write(rec, false);
      this.dead(old, m.bytes);
      m.segment = seg;
      m.bytes = rec.length;
      this.live(seg, rec.length);
    }
    for (const [channel, r] of this.retained) {
      if (r.segment !== old) continue;
      const rec = encodeRecord({ type: RecordType.Retain, channel, message: r.message, data: r.data });
      const seg = this.write(rec, false);
      this.dead(old, r.bytes);
      r.segment = seg;
      r.bytes = rec.length;
      this.live(seg, rec.length);
    }
  }

  /** Reads every segment in order; a torn or corrupt tail is cut off and reported. */
  private replay(): void {
    const names = fs.readdirSync(this.dir).filter((n) => NAME_RE.test(n)).sort();
    for (let i = 0; i < names.length; i++) {
      const file = path.join(this.dir, names[i]!);
      const buf = fs.readFileSync(file);
      const scan = scanSegment(buf);
      const seg: Segment = { index: Number(NAME_RE.exec(names[i]!)![1]), file, size: scan.goodEnd, live: 0, liveBytes: 0 };
      if (scan.problem) {
        this.problems.push(`${file}: ${scan.problem}; ${buf.length - scan.goodEnd} bytes discarded`);
        if (scan.goodEnd < SEGMENT_MAGIC.length) {
          fs.rmSync(file, { force: true });
          continue;
        }
        fs.truncateSync(file, scan.goodEnd);
      }
      this.segments.push(seg);
      for (const { rec, bytes } of scan.records) this.apply(rec, bytes, seg);
    }
    // Delivered once at least, and not acknowledged: they come again as redeliveries.
    for (const m of this.messages.values()) if (m.deliveries === 0 && m.seq <= (this.watermarks.get(m.channel) ?? 0)) m.deliveries = 1;
    this.watermarks.clear();
  }

  private apply(rec: Rec, bytes: number, seg: Segment): void {
    switch (rec.type) {
      case RecordType.Msg: {
        const old = this.messages.get(rec.seq);
        if (old) this.dead(old.segment, old.bytes);
        this.messages.set(rec.seq, { seq: rec.seq, channel: rec.channel, message: rec.message, data: rec.data, deliveries: rec.deliveries, segment: seg, bytes });
        this.live(seg, bytes);
        if (rec.seq >= this.nextSeq) this.nextSeq = rec.seq + 1;
        break;
      }
      case RecordType.Done: {
        const m = this.messages.get(rec.seq);
        if (m) {
          this.messages.delete(rec.seq);
          this.dead(m.segment, m.bytes);
        }
        if (rec.seq >= this.nextSeq) this.nextSeq = rec.seq + 1;
        break;
      }
      case RecordType.Count: {
        const m = this.messages.get(rec.seq);
        if (m) m.deliveries = Math.max(m.deliveries, rec.deliveries);
        break;
      }
      case RecordType.Retain: {
        const old = this.retained.get(rec.channel);
        if (old) this.dead(old.segment, old.bytes);
        this.retained.set(rec.channel, { message: rec.message, data: rec.data, segment: seg, bytes });
        this.live(seg, bytes);
        break;
      }
      case RecordType.Delivered:
        if (rec.seq > (this.watermarks.get(rec.channel) ?? 0)) this.watermarks.set(rec.channel, rec.seq);
        break;
      case RecordType.Unretain: {
        const old = this.retained.get(rec.channel);
        if (old) {
          this.retained.delete(rec.channel);
          this.dead(old.segment, old.bytes);
        }
        break;
      }
    }
  }

  /** Opens the newest segment for appending, or starts the first. */
  private openHead(): void {
    if (this.segments.length === 0) return this.roll();
    this.fd = fs.openSync(this.head.file, 'r+');
  }
}

function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // not every file system syncs folders
  }
}
