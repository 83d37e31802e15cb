// Large messages by descriptor in the broker: senders' pool segments, slot references per receiver, frees (PROTOCOL 8).
import { Flag, Kind } from '../protocol/constants.js';
import { decodeSendDescriptor } from '../protocol/shm-descriptor.js';
import { decodeControl } from '../protocol/control.js';
import { QcopError, codeOfErrno } from '../protocol/errors.js';
import { encodeFrame, payloadOf, type Frame } from '../protocol/frame.js';
import { native, nativeAvailable } from '../native/index.js';
import { attachPoolSegment, type PoolSegment } from '../shm/pool-segment.js';
import type { Connection } from './connection.js';
import { describedMsg, inlineMsg } from './shm-frames.js';

/** What the router needs from the broker. */
export interface ShmHost {
  readonly maxFrameBytes: number;
  readonly slowConsumer: 'drop' | 'disconnect';
  readonly maxPoolBytes: number;
  /** The gid clients give their segments (group read), when the broker has a group. */
  readonly shmGroup?: number | undefined;
  nextSeq(): number;
  log(level: 'error' | 'warn' | 'info' | 'debug', text: string): void;
  /** SPEC §9: `bytes` more (or, negative, fewer) shared memory announced by `c`'s user; false (nothing taken) past its quota. */
  userShm(c: Connection, bytes: number): boolean;
}

interface Segment { index: number; seg: PoolSegment; name: Buffer; live: number; retired: boolean; shrunk: boolean }
interface Sender { pools: Map<number, Segment>; slots: Map<number, Slot>; poolBytes: number; open: boolean; uid: number; max: number }
interface Slot {
  token: number; sender: Connection; state: Sender; id: number; segment: Segment; length: number;
  /** Receivers holding it; of those, the ones not lagging; whether the sender was told it lags. */
  refs: number; active: number; lagged: boolean;
}
/** `lagging`: it was dropped for, holding a quarter of a sender's pool; cleared once it holds nothing. */
interface Receiver { held: Map<number, Slot>; bytes: number; progressAt: number; lagging: boolean }

/** Most segments one connection may announce at once. */
const MAX_SEGMENTS = 64;
const LOCAL = new Set(['unix', 'inprocess']);
/** Under the `disconnect` policy, a receiver holding slots without releasing any for this long is closed (PROTOCOL 8.4). */
export const SHM_STALL_MS = 5000;
/** A receiver holding a quarter of a sender's pool that released nothing for this long is lagging (PROTOCOL 8.5). */
export const SHM_LAG_MS = 1000;

/** Broker-wide shared-memory state; every method answers bad input with EBADSLOT and leaves the rest alone. */
export class ShmRouter {
  /** True when this broker can map pools (the addon loads). */
  readonly enabled = nativeAvailable();
  readonly counters = { messages: 0, bytes: 0, inlined: 0, dropped: 0, shrunk: 0 };
  private readonly senders = new Map<Connection, Sender>();
  private readonly receivers = new Map<Connection, Receiver>();
  private readonly tokens = new Map<number, Slot>();
  private nextToken = 1;
  private stallTimer: NodeJS.Timeout | null = null;

  constructor(private readonly host: ShmHost) {}

  /** PROTOCOL 8.1: a receiver maps pools when it announced `shm` and shares the broker's host. */
  canMap(c: Connection): boolean {
    return this.enabled && LOCAL.has(c.transport) && c.features.includes('shm');
  }

  /** PROTOCOL 8.2: Pool announces (or with Flag.Retire withdraws) segment `aux` of the sender's pool. */
  announce(c: Connection, f: Frame): void {
    if (!this.canMap(c)) return c.error('ENOTSUP', 'shared-memory pools need the shm feature over a local transport', f.id, f.kind);
    const st = this.sender(c);
    const old = st.pools.get(f.aux);
    if (f.flags & Flag.Retire) {
      if (!old) return c.error('EBADSLOT', `pool segment ${f.aux} was never announced`, f.id, f.kind);
      st.pools.delete(f.aux);
      old.retired = true;
      st.poolBytes -= old.seg.size;
      this.host.userShm(c, -old.seg.size);
      if (old.live === 0) old.seg.close();
      return c.push(encodeFrame(Kind.Result, 0, f.id, 0, '', ''));
    }
    if (old) return c.error('EBADSLOT', `pool segment ${f.aux} is already announced`, f.id, f.kind);
    if (st.pools.size >= MAX_SEGMENTS) return c.error('ELIMIT', `more than ${MAX_SEGMENTS} pool segments`, f.id, f.kind);
    let key: unknown;
    let max: unknown;
    try {
      ({ key, max } = decodeControl(payloadOf(f)));
    } catch {
      key = undefined;
    }
    if (typeof max === 'number' && max > 0) st.max = Math.min(max, this.host.maxPoolBytes);
    if (typeof key !== 'string') return c.error('EINVAL', 'pool payload must be a CBOR map with a key', f.id, f.kind);
    let seg: PoolSegment;
    try {
      if (st.uid < 0) st.uid = peerUid(c);
      seg = attachPoolSegment(key, st.uid, this.host.shmGroup);
    } catch (e) {
      return c.error(e instanceof QcopError ? e.code : codeOfErrno((e as { code?: unknown }).code), (e as Error).message, f.id, f.kind);
    }
    if (st.poolBytes + seg.size > this.host.maxPoolBytes) {
      seg.close();
      return c.error('ELIMIT', `a pool above maxPoolBytes (${this.host.maxPoolBytes})`, f.id, f.kind);
    }
    if (!this.host.userShm(c, seg.size)) {
      seg.close();
      return c.error('ELIMIT', 'this user is at its shared-memory quota (shmBytes)', f.id, f.kind);
    }
    st.poolBytes += seg.size;
    st.pools.set(f.aux, { index: f.aux, seg, name: Buffer.from(seg.name, 'utf8'), live: 0, retired: false, shrunk: false });
    c.push(encodeFrame(Kind.Result, 0, f.id, seg.size, '', ''));
  }

  /**
   * PROTOCOL 8.3: routes a Send|Shm. Mapping receivers get one shared descriptor frame; the
   * others get the bytes inline when they fit the frame limit, else a Lost. Returns the receivers reached.
   */
  route(c: Connection, f: Frame, receivers: Connection[]): number {
    const named = this.named(c, f);
    if (typeof named === 'string') return this.bad(c, f, named);
    const { st, segment, id, offset, length } = named;
    // docs/SHM.md §10: the file must still back the slot (the sender may have shrunk it); a fault later is caught by the guard.
    if (!segment.seg.intact(offset, length)) {
      this.shrunk(c, segment);
      return this.bad(c, f, `pool segment ${segment.index} no longer backs slot ${offset}+${length} (it was shrunk)`);
    }
    const slot: Slot = { token: this.token(), sender: c, state: st, id, segment, length, refs: 0, active: 0, lagged: false };
    const seq = this.host.nextSeq();
    // Counted before routing: a receiver's policy may close the sender itself, which lets go of idle segments.
    segment.live++;
    this.counters.messages++;
    this.counters.bytes += length;
    let described: Buffer | null = null;
    let inline: Buffer | false | null = null;
    let reached = 0;
    for (const r of receivers) {
      if (this.canMap(r)) {
        const rs = this.receiver(r);
        // PROTOCOL 8.5: a receiver already holding a quarter of the sender's pool is slow (a sender
        // pauses at a quarter in flight, so one that keeps up never gets there): dropped for, and lagging.
        if (rs.bytes >= st.max / 4) {
          r.overflow();
          if (r.state === 'open') this.lagging(rs);
          continue;
        }
        described ??= describedMsg(f, slot.token, offset, slot.length, slot.segment, slot.sender.id, seq);
        if (!r.deliver(described)) continue;
        if (rs.held.size === 0) rs.progressAt = Date.now();
        rs.held.set(slot.token, slot);
        rs.bytes += length;
        this.watchStalls();
        slot.refs++;
        if (!rs.lagging) slot.active++;
        reached++;
      } else {
        if (inline === null && f.messageEnd + length <= this.host.maxFrameBytes) {
          inline = inlineMsg(f, segment.seg.buffer.subarray(offset, offset + length), seq, c.id);
          // Read under the fault guard: a segment shrunk during the copy gives zeros, which are never delivered.
          if (!segment.seg.intact(offset, length)) {
            this.shrunk(c, segment);
            inline = false;
          }
        }
        if (!inline) {
          // PROTOCOL 8.6: too large for this receiver's link (or the copy was lost): dropped, counted, told.
          this.counters.dropped++;
          r.dropOne();
          continue;
        }
        if (r.deliver(inline)) {
          this.counters.inlined++;
          reached++;
        }
      }
    }
    if (slot.refs > 0) {
      this.tokens.set(slot.token, slot);
      st.slots.set(id, slot);
      if (slot.active === 0) this.lag(slot);
    } else {
      if (--segment.live === 0 && segment.retired) segment.seg.close();
      c.push(encodeFrame(Kind.Freed, 0, 0, id, '', ''));
    }
    return reached;
  }

  /**
   * SPEC §10 (docs/DURABLE.md): the bytes of a Send|Shm to a queued channel or to retain, copied
   * out of the sender's slot, which is freed at once (Freed). Null when the frame was answered: a
   * bad descriptor (EBADSLOT), or data longer than `maxBytes` (EMSGSIZE: they could not be
   * delivered inline later).
   */
  copyOut(c: Connection, f: Frame, maxBytes: number, free = true): Buffer | null {
    const named = this.named(c, f);
    if (typeof named === 'string') return this.refuse(c, f, named);
    const { segment, id, offset, length } = named;
    // Without `free` the slot goes on to be routed as usual (a retained copy of a message of a channel that is not queued).
    if (free) c.push(encodeFrame(Kind.Freed, 0, 0, id, '', ''));
    if (length > maxBytes) {
      c.error('EMSGSIZE', `${length} data bytes cannot be stored: a stored message is delivered inline, at most ${maxBytes} bytes of data here`, f.id, f.kind);
      return null;
    }
    const out = Buffer.from(segment.seg.buffer.subarray(offset, offset + length));
    // Read under the fault guard: a segment shrunk during the copy gives zeros, which are never stored.
    if (!segment.seg.intact(offset, length)) {
      this.shrunk(c, segment);
      return this.refuse(c, f, `pool segment ${segment.index} no longer backs slot ${offset}+${length} (it was shrunk)`);
    }
    return out;
  }

  /** Tells the sender of a Send|Shm that was never routed (it waited for an activated program) that its slot is free. */
  unrouted(c: Connection, f: Frame): void {
    const d = decodeSendDescriptor(payloadOf(f));
    if (d && c.state === 'open') c.push(encodeFrame(Kind.Freed, 0, 0, d.slot, '', ''));
  }

  /** The sender's slot a Send|Shm names, checked (PROTOCOL 8.3); otherwise a text saying what is wrong with it. */
  private named(c: Connection, f: Frame): { st: Sender; segment: Segment; id: number; offset: number; length: number } | string {
    const d = decodeSendDescriptor(payloadOf(f));
    const st = this.senders.get(c);
    if (!d || !st) return 'descriptor before any pool segment, or not 16 bytes';
    const segment = st.pools.get(d.segment);
    if (!segment) return `pool segment ${d.segment} is not announced`;
    if (d.length === 0 || d.offset + d.length > segment.seg.size) return `slot ${d.offset}+${d.length} lies outside the ${segment.seg.size}-byte segment`;
    if (st.slots.has(d.slot)) return `slot ${d.slot} is still in use`;
    return { st, segment, id: d.slot, offset: d.offset, length: d.length };
  }

  /** PROTOCOL 8.4: a receiver is done with a token; a token it does not hold is EBADSLOT. */
  release(c: Connection, f: Frame): void {
    const rs = this.receivers.get(c);
    const slot = rs?.held.get(f.aux);
    if (!rs || !slot) return c.error('EBADSLOT', `token ${f.aux} was never delivered here or is already released`, f.id, f.kind);
    rs.held.delete(f.aux);
    rs.bytes -= slot.length;
    rs.progressAt = Date.now();
    this.letGo(rs, slot);
    if (rs.held.size === 0) rs.lagging = false;
    c.tellLost();
  }

  /** A connection went away: its references are released, its pool is let go once nobody reads it. */
  closed(c: Connection): void {
    const rs = this.receivers.get(c);
    if (rs) {
      this.receivers.delete(c);
      for (const slot of rs.held.values()) this.letGo(rs, slot);
    }
    const st = this.senders.get(c);
    if (st) {
      this.senders.delete(c);
      st.open = false;
      for (const s of st.pools.values()) {
        s.retired = true;
        if (s.live === 0) s.seg.close();
      }
    }
  }

  /** Figures for `stats()`. */
  stats(): Record<string, number> {
    let segments = 0;
    let poolBytes = 0;
    let slotBytes = 0;
    for (const st of this.senders.values()) {
      segments += st.pools.size;
      poolBytes += st.poolBytes;
    }
    for (const s of this.tokens.values()) slotBytes += s.length;
    const k = this.counters;
    const faults = this.enabled ? native().guardFaults() : 0;
    return { messages: k.messages, bytes: k.bytes, inlined: k.inlined, dropped: k.dropped, shrunk: k.shrunk, faults, slotsInUse: this.tokens.size, slotBytesInUse: slotBytes, segments, poolBytes };
  }

  /**
   * While receivers hold slots: one that released nothing for SHM_LAG_MS while holding a quarter
   * of a sender's pool becomes lagging (its slots stop holding the sender back); under
   * `disconnect`, one that released nothing for SHM_STALL_MS is closed, which gives its slots back.
   */
  private watchStalls(): void {
    if (this.stallTimer) return;
    this.stallTimer = setInterval(() => {
      const now = Date.now();
      let holding = 0;
      for (const [c, rs] of [...this.receivers]) {
        if (rs.held.size === 0) continue;
        if (this.host.slowConsumer === 'disconnect' && rs.progressAt < now - SHM_STALL_MS) {
          c.overflow(); // logs and counts like any slow receiver
          continue;
        }
        holding++;
        const first = rs.held.values().next().value as Slot;
        if (!rs.lagging && rs.progressAt < now - SHM_LAG_MS && rs.bytes >= first.state.max / 4) this.lagging(rs);
      }
      if (holding === 0 && this.stallTimer) {
        clearInterval(this.stallTimer);
        this.stallTimer = null;
      }
    }, 100);
    this.stallTimer.unref?.();
  }

  /** Lets go of every pool (broker shutdown). */
  closeAll(): void {
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.stallTimer = null;
    for (const c of [...this.senders.keys(), ...this.receivers.keys()]) this.closed(c);
    for (const s of this.tokens.values()) if (s.segment.retired) s.segment.seg.close();
    this.tokens.clear();
  }

  /** A receiver drops its reference; when only lagging receivers hold the slot, the sender may stop counting it. */
  private letGo(rs: Receiver, slot: Slot): void {
    if (!rs.lagging) slot.active--;
    this.unref(slot);
    if (slot.refs > 0 && slot.active === 0) this.lag(slot);
  }

  /** Marks a receiver lagging: slots it alone (with other laggards) still holds are reported to their senders. */
  private lagging(rs: Receiver): void {
    if (rs.lagging) return;
    rs.lagging = true;
    for (const slot of rs.held.values()) if (--slot.active === 0) this.lag(slot);
  }

  /** PROTOCOL 8.5: tells the sender a slot is held only by slow receivers (it stays valid, but need not hold the sender back). */
  private lag(slot: Slot): void {
    if (slot.lagged || !slot.state.open) return;
    slot.lagged = true;
    slot.sender.push(encodeFrame(Kind.Lagging, 0, 0, slot.id, '', ''));
  }

  private unref(slot: Slot): void {
    if (--slot.refs > 0) return;
    this.tokens.delete(slot.token);
    slot.state.slots.delete(slot.id);
    const seg = slot.segment;
    if (--seg.live === 0 && seg.retired) seg.seg.close();
    if (slot.state.open) slot.sender.push(encodeFrame(Kind.Freed, 0, 0, slot.id, '', ''));
  }

  /** A sender shrank a segment under its slots (docs/SHM.md §10): counted each time, logged once per segment. */
  private shrunk(c: Connection, segment: Segment): void {
    this.counters.shrunk++;
    if (segment.shrunk) return;
    segment.shrunk = true;
    this.host.log('warn', `connection ${c.id}: pool segment ${segment.seg.name} was shrunk under its messages; they are refused or dropped`);
  }

  /** `bad` for copyOut: answered, nothing to copy. */
  private refuse(c: Connection, f: Frame, why: string): null {
    this.bad(c, f, why);
    return null;
  }

  private bad(c: Connection, f: Frame, why: string): number {
    c.error('EBADSLOT', why, f.id, f.kind);
    return -1;
  }

  private token(): number {
    do this.nextToken = this.nextToken >= 0xffffffff ? 1 : this.nextToken + 1;
    while (this.tokens.has(this.nextToken));
    return this.nextToken;
  }

  private sender(c: Connection): Sender {
    let st = this.senders.get(c);
    if (!st) this.senders.set(c, (st = { pools: new Map(), slots: new Map(), poolBytes: 0, open: true, uid: -1, max: this.host.maxPoolBytes }));
    return st;
  }

  private receiver(c: Connection): Receiver {
    let rs = this.receivers.get(c);
    if (!rs) this.receivers.set(c, (rs = { held: new Map(), bytes: 0, progressAt: Date.now(), lagging: false }));
    return rs;
  }
}

/** The kernel-verified uid of a local peer, read at accept (PROTOCOL 8.2): the pool must belong to it. */
function peerUid(c: Connection): number {
  if (!c.peer) throw new QcopError('EACCES', 'the peer\'s credentials are unknown: no pool without them');
  return c.peer.uid;
}
