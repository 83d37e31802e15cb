// Queued channels (SPEC §10): stored messages delivered in order, acknowledged, redelivered, dead-lettered.
import { Flag, Kind } from '../../protocol/constants.js';
import { encodeFrame } from '../../protocol/frame.js';
import { Pattern } from '../../protocol/pattern.js';
import { isPattern } from '../../protocol/names.js';
import type { Store, StoredMsg } from './store.js';

/** A queued message no receiver had room for is tried again after this long. */
const RETRY_MS = 200;

/** The channel a message goes to after `maxDeliveries` deliveries without acknowledgement. */
export const DEAD_LETTER = 'qcop/dead-letter';

/** What the queue needs of a receiving connection. */
export interface QueueReceiver {
  readonly id: number;
  deliver(frame: Buffer): boolean;
}

interface Entry {
  m: StoredMsg;
  /** Receivers it was delivered to that have not acknowledged it; null while it waits. */
  holders: Set<QueueReceiver> | null;
  redelivered: boolean;
  consumed: boolean;
  /** On disk as `durability` asks: only then is it delivered (and later ones wait behind it). */
  synced: boolean;
}

class ChannelQueue {
  entries: Entry[] = [];
  head = 0;
  bytes = 0;
  count = 0;
  dead = 0;

  /** Forgets consumed entries at the front. */
  trim(): void {
    while (this.head < this.entries.length && this.entries[this.head]!.consumed) this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}

export interface QueueHost {
  /** The connections that may receive on `channel` now (listeners the policy lets receive). */
  receivers(channel: string): QueueReceiver[];
  /** Nobody listens on a channel with waiting messages (activation, SPEC §10). */
  idle(channel: string): void;
  /** A message goes to the dead letters: route it there. */
  deadLetter(m: StoredMsg): void;
  log(level: 'warn' | 'info' | 'debug', text: string): void;
}

export interface QueueLimits {
  maxDeliveries: number;
  maxUnackedPerClient: number;
}

/** Every queued channel's stored messages, in order, with who holds which. */
export class Queues {
  private readonly queues = new Map<string, ChannelQueue>();
  private readonly unacked = new Map<QueueReceiver, Map<number, Entry>>();
  deadLetters = 0;

  constructor(private readonly store: Store, private readonly host: QueueHost, private readonly limits: QueueLimits) {
    const all = [...store.messages.values()].sort((a, b) => a.seq - b.seq);
    for (const m of all) this.add(m, m.deliveries > 0, true);
  }

  /**
   * Stores a message (throws ENOSPC/ENOBUFS) and, once it is on disk as `durability` says,
   * delivers it if it can; `done` then gets how many received it.
   */
  send(channel: string, message: string, data: Buffer, done: (err: Error | null, receivers: number) => void): void {
    let e: Entry | null = null;
    const m = this.store.append(channel, message, data, (err) => {
      e!.synced = true;
      this.pump(channel);
      done(err, e!.holders?.size ?? 0);
    });
    e = this.add(m, false, false);
  }

  /** Delivers what waits on every queued channel `name` (a channel or a pattern) covers: a listener registered. */
  listened(name: string): void {
    if (!isPattern(name)) {
      if (this.queues.has(name)) this.pump(name);
      return;
    }
    const p = new Pattern(name);
    for (const ch of [...this.queues.keys()]) if (p.matches(ch)) this.pump(ch);
  }

  /** A receiver acknowledged message `id` (PROTOCOL 3.16); unknown ids are ignored (a race with a redelivery). */
  ack(r: QueueReceiver, id: number): void {
    const mine = this.unacked.get(r);
    const e = mine?.get(id);
    if (!e || !mine) return;
    mine.delete(id);
    e.holders?.delete(r);
    if (e.holders && e.holders.size === 0) this.consume(e);
    this.pump(e.m.channel);
  }

  /** A receiver stopped listening: what it held on channels it no longer covers is given back as after a close. */
  released(r: QueueReceiver, covers: (channel: string) => boolean): void {
    const mine = this.unacked.get(r);
    if (!mine) return;
    const back = new Map<number, Entry>();
    for (const [id, e] of mine) {
      if (covers(e.m.channel)) continue;
      back.set(id, e);
      mine.delete(id);
    }
    if (back.size > 0) this.giveBack(r, back);
  }

  /** A receiver is gone: what it held and did not acknowledge is delivered again, marked, to whoever listens. */
  closed(r: QueueReceiver): void {
    const mine = this.unacked.get(r);
    if (!mine) return;
    this.unacked.delete(r);
    this.giveBack(r, mine);
  }

  private giveBack(r: QueueReceiver, held: Map<number, Entry>): void {
    const channels = new Set<string>();
    for (const e of held.values()) {
      if (!e.holders || e.consumed) continue;
      e.holders.delete(r);
      if (e.holders.size > 0) continue;
      e.holders = null;
      e.redelivered = true;
      channels.add(e.m.channel);
      // Its last delivery failed: to the dead letters now, not when someone listens again.
      if (e.m.deliveries >= this.limits.maxDeliveries) this.bury(e);
      else this.store.count(e.m);
    }
    for (const ch of channels) this.pump(ch);
  }

  /** Delivers, or asks for a program for, every channel with stored messages (at start). */
  kick(): void {
    for (const ch of [...this.queues.keys()]) this.pump(ch);
  }

  /** True when messages wait (undelivered) on `channel`. */
  waiting(channel: string): boolean {
    const q = this.queues.get(channel);
    if (!q) return false;
    for (let i = q.head; i < q.entries.length; i++) if (!q.entries[i]!.consumed && !q.entries[i]!.holders) return true;
    return false;
  }

  /** Per-channel figures for stats: stored messages and bytes, dead letters. */
  stats(): Record<string, { messages: number; bytes: number; deadLetters: number }> {
    const out: Record<string, { messages: number; bytes: number; deadLetters: number }> = {};
    for (const [ch, q] of this.queues) if (q.count > 0 || q.dead > 0) out[ch] = { messages: q.count, bytes: q.bytes, deadLetters: q.dead };
    return out;
  }

  get unackedTotal(): number {
    let n = 0;
    for (const m of this.unacked.values()) n += m.size;
    return n;
  }

  private add(m: StoredMsg, redelivered: boolean, synced: boolean): Entry {
    let q = this.queues.get(m.channel);
    if (!q) this.queues.set(m.channel, (q = new ChannelQueue()));
    const e: Entry = { m, holders: null, redelivered, consumed: false, synced };
    q.entries.push(e);
    q.count++;
    q.bytes += m.bytes;
    return e;
  }

  private readonly retrying = new Set<string>();

  private retryLater(channel: string): void {
    if (this.retrying.has(channel)) return;
    this.retrying.add(channel);
    setTimeout(() => {
      this.retrying.delete(channel);
      this.pump(channel);
    }, RETRY_MS).unref?.();
  }

  /** Moves a message delivered maxDeliveries times without acknowledgement to the dead letters. */
  private bury(e: Entry): void {
    const m = e.m;
    this.consume(e);
    const q = this.queues.get(m.channel)!;
    q.dead++;
    this.deadLetters++;
    this.host.log('warn', `message ${m.seq} '${m.message}' on ${m.channel} was delivered ${m.deliveries} times without acknowledgement: moved to ${DEAD_LETTER}`);
    this.host.deadLetter(m);
  }

  private consume(e: Entry): void {
    if (e.consumed) return;
    e.consumed = true;
    e.holders = null;
    const q = this.queues.get(e.m.channel)!;
    q.count--;
    q.bytes -= e.m.bytes;
    this.store.done(e.m);
    q.trim();
  }

  /**
   * Delivers the waiting messages of `channel` in order to every receiver there is, while each has
   * fewer than `maxUnackedPerClient` unacknowledged: one receiver at its window holds the channel
   * back, so that nobody sees the messages out of order.
   */
  private pump(channel: string): void {
    const q = this.queues.get(channel);
    if (!q || q.count === 0) return;
    const receivers = this.host.receivers(channel);
    if (receivers.length === 0) {
      if (this.waiting(channel)) this.host.idle(channel);
      return;
    }
    const window = this.limits.maxUnackedPerClient;
    let last = 0;
    for (let i = q.head; i < q.entries.length; i++) {
      const e = q.entries[i]!;
      if (e.consumed || e.holders) continue;
      if (!e.synced) break;
      if (receivers.some((r) => (this.unacked.get(r)?.size ?? 0) >= window)) break;
      const m = e.m;
      if (m.deliveries >= this.limits.maxDeliveries) {
        this.bury(e);
        continue;
      }
      const id = m.seq >>> 0;
      const frame = encodeFrame(Kind.Msg, Flag.Queued | (e.redelivered ? Flag.Redelivered : 0), id, 0, m.channel, m.message, m.data);
      const holders = new Set<QueueReceiver>();
      for (const r of receivers) {
        if (!r.deliver(frame)) continue;
        holders.add(r);
        let mine = this.unacked.get(r);
        if (!mine) this.unacked.set(r, (mine = new Map()));
        mine.set(id, e);
      }
      if (holders.size === 0) {
        // Every receiver is full (slow-consumer policy): try again shortly, not only at the next event.
        this.retryLater(channel);
        break;
      }
      e.holders = holders;
      m.deliveries++;
      if (m.seq > last) last = m.seq;
    }
    // One record per batch: after a broker crash these come again marked redelivered.
    if (last > 0) this.store.delivered(channel, last);
  }
}
