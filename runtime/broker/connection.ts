// One client connection inside the broker: its state, its input (partial frames bounded in size and time), the slow-consumer policy.
import type { Duplex } from 'node:stream';
import { KIND_NAMES, Kind, PROTOCOL_VERSION } from '../protocol/constants.js';
import { encodeFrame } from '../protocol/frame.js';
import type { QcopCode, ReplierCode } from '../protocol/errors.js';
import { LastName } from '../protocol/names.js';
import { FrameParser, type FrameHead, type PartialBudget } from '../protocol/parser.js';
import { BUFFER_OVERHEAD, type MemoryBudget } from './budget.js';
import { Outbound } from './outbound.js';
import { newAclCache } from './access.js';
import type { QuotaEntry } from './user-quotas.js';
import type { PeerIdentity } from './peer.js';
import type { Pauses } from './pauses.js';
import { PartialClock } from './partial-clock.js';
import type { Watch } from './watches.js';

/** What a connection needs from the broker that owns it. */
export interface ConnectionHost {
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  readonly slowConsumer: 'drop' | 'disconnect';
  /** A frame started and not complete within this time closes the connection (SPEC §8). */
  readonly partialFrameTimeoutMs: number;
  /** End-to-end backpressure (SPEC §2): off gives the policy at `maxQueueBytes` at once. */
  readonly backpressure: boolean;
  /** A receiver's queue past this holds the connections filling it; below `lowWaterBytes` they read again. */
  readonly highWaterBytes: number;
  readonly lowWaterBytes: number;
  /** A receiver over its mark that makes no progress for this long is stuck: the policy applies to it. */
  readonly stallMs: number;
  /** The connection whose frame is being dispatched (the sender of what is delivered now), else null. */
  readonly sender: Connection | null;
  /** Why connections are paused (turns and backpressure): a stream reads again when nothing holds it. */
  readonly pauses: Pauses<Connection>;
  /** The broker-wide count of memory held for clients. */
  readonly budget: MemoryBudget;
  /** Called for every complete frame, in order. */
  onFrame(conn: Connection, frame: import('../protocol/frame.js').Frame): void;
  /** Called once when the connection is gone, whatever the reason. */
  onClose(conn: Connection): void;
  /** Schedules `conn.flushOut()` for the end of the current tick. */
  markDirty(conn: Connection): void;
  /** Counts a stream closed for a protocol violation. */
  countProtocolError(conn: Connection): void;
  /** Counts a message dropped for a slow receiver, or a slow receiver disconnected. */
  countSlow(conn: Connection, disconnected: boolean): void;
  /** SPEC §9: `delta` bytes more (or fewer) queued towards `conn`'s user. */
  userQueued(conn: Connection, delta: number): void;
  /** SPEC §9: room for `bytes` more queued towards `conn`'s user. */
  userQueueFits(conn: Connection, bytes: number): boolean;
  /** Counts a receiver declared stuck (backpressure). */
  countStuck(conn: Connection): void;
  /** `n` messages dropped for `conn` are being told to it (a lost notice, PROTOCOL 3.14). */
  toldLost(conn: Connection, n: number): void;
  log(level: 'error' | 'warn' | 'info' | 'debug', text: string): void;
}

export type ConnState = 'hello' | 'open' | 'closed';

export class Connection {
  state: ConnState = 'hello';
  name = '';
  pid = 0;
  version = PROTOCOL_VERSION;
  features: string[] = [];
  /** Announced `noecho` (PROTOCOL 2.3): its own sends are never routed back to it. */
  noEcho = false;
  /** The policy's last answers for this connection (access.ts). */
  readonly aclCache = newAclCache();
  /** What this connection holds against its user's quotas (user-quotas.ts); null when not accounted. */
  quotaEntry: QuotaEntry | null = null;
  /** Listener names this connection holds. */
  readonly listening = new Set<string>();
  /** Watches by id. */
  readonly watches = new Map<number, Watch<Connection>>();
  /** Sends routed since the last flush, and how many of those reached nobody (SPEC §2 flush). */
  sent = 0;
  unrouted = 0;
  /** The channel of this connection's previous send, to skip decoding it again (handlers.ts). */
  readonly lastChannel = new LastName();
  /** Messages dropped towards this receiver since it was last told (PROTOCOL 3.14), and in all. */
  private lost = 0;
  lostTotal = 0;
  /** Over its mark without progress for `stallMs` (SPEC §2): the policy applies, it holds nobody, until below low water. */
  stuck = false;
  /** Senders this receiver holds paused (backpressure); released on progress below low water, when stuck, or closed. */
  private readonly holding = new Set<Connection>();
  private stallTimer: NodeJS.Timeout | null = null;
  private progressCount = 0;
  private stallMark = 0;
  private readonly out: Outbound;
  private readonly parser: FrameParser;
  private handshakeTimer: NodeJS.Timeout | null = null;
  // The incomplete frame being timed: which one (by the parser's count of ended frames) and since when.
  private readonly partialClock: PartialClock;

  constructor(
    private readonly host: ConnectionHost,
    readonly stream: Duplex,
    readonly id: number,
    readonly transport: string,
    handshakeTimeoutMs: number,
    /** The peer's kernel-verified credentials, read at accept (local sockets only; broker/peer.ts). */
    readonly peer: PeerIdentity | null = null,
  ) {
    // Queued bytes count against the broker's budget and this user's quota at once.
    const conn = this;
    const budget = host.budget;
    const account = {
      get queued(): number {
        return budget.queued;
      },
      set queued(v: number) {
        const delta = v - budget.queued;
        budget.queued = v;
        host.userQueued(conn, delta);
      },
    };
    this.out = new Outbound(stream, account, () => this.progressed());
    this.parser = new FrameParser(host.maxFrameBytes, this.partialBudget(host.budget));
    this.partialClock = new PartialClock(this.parser, host.partialFrameTimeoutMs, () => this.stream.isPaused(), (limit) => {
      if (this.state !== 'closed') this.fatal('ETIMEDOUT', `a frame started ${limit} ms ago is still incomplete (${this.parser.buffered} bytes received)`);
    });
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('drain', () => this.onDrain());
    stream.on('error', (err) => host.log('debug', `connection ${id}: ${err.message}`));
    stream.on('close', () => this.closed());
    this.handshakeTimer = setTimeout(() => {
      if (this.state === 'hello') this.fatal('EPROTO', `no hello within ${handshakeTimeoutMs} ms`);
    }, handshakeTimeoutMs);
    this.handshakeTimer.unref?.();
  }

  /** Bytes waiting to reach this client, counted as the memory they hold (outbound.ts). */
  get queuedBytes(): number {
    return this.out.bytes;
  }

  /** The memory really behind the queue, found from its buffers (for stats: at most `queuedBytes`). */
  heldBytes(): number {
    return this.out.heldBytes();
  }

  /** Bytes held for a frame that is still arriving. */
  get partialBytes(): number {
    return this.parser.held;
  }

  /** True once the handshake is done (it stays true after the close). */
  greeted = false;

  /** Marks the handshake done. */
  opened(): void {
    this.state = 'open';
    this.greeted = true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  /** Senders this receiver holds paused now (stats). */
  get holdingSenders(): number {
    return this.holding.size;
  }

  /**
   * Queues routed traffic (SPEC §2). With backpressure, past the high-water mark the sender of
   * this frame is paused until this receiver drains below low water (or is stuck); frames already
   * read still come, up to twice `maxQueueBytes`. Past that limit, or past `maxQueueBytes` for a
   * stuck receiver or without backpressure, the slow-consumer policy applies: the frame is
   * dropped for this receiver and counted, or the receiver is disconnected.
   */
  deliver(frame: Buffer): boolean {
    if (this.state !== 'open') return false;
    const h = this.host;
    const pressing = h.backpressure && !this.stuck;
    // SPEC §9: past its user's queuedBytes quota a receiver is dropped for like a full one.
    if (this.queuedBytes + frame.length > (pressing ? 2 * h.maxQueueBytes : h.maxQueueBytes) || !h.userQueueFits(this, frame.length)) {
      this.overflow();
      return false;
    }
    this.push(frame);
    if (pressing && this.queuedBytes > h.highWaterBytes) this.full();
    return true;
  }

  /** Over the mark: holds the sender of the frame just queued, and watches for progress. */
  private full(): void {
    const s = this.host.sender;
    if (s !== null && s.state === 'open' && !this.holding.has(s)) {
      this.holding.add(s);
      this.host.pauses.pause(s, this);
    }
    this.armStall();
  }

  private armStall(): void {
    if (this.stallTimer) return;
    this.stallMark = this.progressCount;
    this.stallTimer = setTimeout(() => this.stallDue(), this.host.stallMs);
    this.stallTimer.unref?.();
  }

  /** `stallMs` later: progress re-arms the watch; none while over the mark (or holding senders) makes this receiver stuck. */
  private stallDue(): void {
    this.stallTimer = null;
    if (this.state !== 'open' || this.stuck) return;
    if (this.holding.size === 0 && this.queuedBytes <= this.host.highWaterBytes) return;
    if (this.progressCount !== this.stallMark) return this.armStall();
    this.stuck = true;
    this.host.countStuck(this);
    this.host.log('info', `connection ${this.id} (${this.name || 'unnamed'}, pid ${this.pid}) made no progress for ${this.host.stallMs} ms: stuck, the slow-consumer policy applies to it`);
    this.release();
  }

  /** A write was called back: below low water the senders read again and a stuck receiver is live again. */
  private progressed(): void {
    this.progressCount++;
    this.relieved();
  }

  private relieved(): void {
    if ((this.holding.size === 0 && !this.stuck) || this.queuedBytes >= this.host.lowWaterBytes) return;
    this.stuck = false;
    this.release();
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }

  /** Lets every sender this receiver holds read again (those nothing else holds). */
  private release(): void {
    if (this.holding.size === 0) return;
    const senders = [...this.holding];
    this.holding.clear();
    for (const s of senders) this.host.pauses.resume(s, this);
  }

  /** Applies the slow-consumer policy to one message this receiver has no room for (also held shm slots, PROTOCOL 8.4). */
  overflow(): void {
    if (this.state !== 'open') return;
    if (this.host.slowConsumer === 'disconnect') {
      this.host.countSlow(this, true);
      this.host.log('warn', `connection ${this.id} (${this.name || 'unnamed'}, pid ${this.pid}) is too slow: disconnected`);
      this.stream.destroy();
      this.closed();
    } else {
      this.lost++;
      this.lostTotal++;
      this.host.countSlow(this, false);
      // Make sure a flush runs, so the receiver hears of the loss even if nothing else is queued.
      if (this.out.idle) this.host.markDirty(this);
    }
  }

  /**
   * Queues a monitor event (SPEC §12): past `maxQueueBytes` it is dropped and counted like any
   * message for a slow receiver, and told by a lost notice, but it never holds the sender.
   */
  tap(frame: Buffer): void {
    if (this.state !== 'open') return;
    if (this.queuedBytes + frame.length > this.host.maxQueueBytes) {
      this.overflow();
      return;
    }
    this.push(frame);
  }

  /** One message could not reach this receiver at all (a shm message too large for its link, PROTOCOL 8.6): counted and told now. */
  dropOne(): void {
    this.lost++;
    this.lostTotal++;
    this.tellLost();
  }

  /** Tells the receiver now how many messages it lost (PROTOCOL 3.14), rather than at its next drain. */
  tellLost(): void {
    if (this.lost === 0 || this.state !== 'open') return;
    this.push(this.takeLost());
  }

  /** The Lost frame for what was dropped so far; the count starts again from zero. */
  private takeLost(): Buffer {
    const n = this.lost;
    this.lost = 0;
    this.host.toldLost(this, n);
    return encodeFrame(Kind.Lost, 0, 0, n, '', '');
  }

  /** Queues a control frame (answers, events). Not dropped, but a client that lets them pile up far past the limit is closed. */
  push(frame: Buffer): void {
    if (this.state === 'closed') return;
    if (this.queuedBytes > 2 * this.host.maxQueueBytes + this.host.maxFrameBytes) {
      this.host.countSlow(this, true);
      this.host.log('warn', `connection ${this.id} does not read its answers: disconnected`);
      this.stream.destroy();
      this.closed();
      return;
    }
    if (this.out.idle) this.host.markDirty(this);
    this.out.add(frame);
  }

  /** Writes the batch of this tick in one go. */
  flushOut(): void {
    if (this.state === 'closed') return;
    this.out.flush();
    this.relieved();
    // PROTOCOL 3.14: once the backlog has room again and no drain is pending, tell the receiver what it lost;
    // otherwise the stream's 'drain' does it.
    // Written at once, not pushed: this is the flush, and pushing would wait for another tick.
    if (this.lost > 0 && !this.stream.writableNeedDrain && this.queuedBytes < this.host.maxQueueBytes / 2) {
      this.out.write(this.takeLost());
    }
  }

  /** Sends an error frame answering a request; the connection stays open (SPEC §2 errors in a request). */
  error(code: QcopCode | ReplierCode, text: string, requestId: number, requestKind: number, channel = ''): void {
    this.push(encodeFrame(Kind.Error, 0, requestId, requestKind, channel, code, Buffer.from(text, 'utf8')));
  }

  /** Sends an error frame and closes: the stream can no longer be trusted (PROTOCOL 5.1). */
  fatal(code: QcopCode, text: string, requestKind = 0): void {
    if (this.state === 'closed') return;
    this.host.countProtocolError(this);
    this.host.log('info', `connection ${this.id} (${this.name || 'unnamed'}, pid ${this.pid}) closed: ${code} ${text}`);
    this.parser.stop();
    this.error(code, text, 0, requestKind);
    this.flushOut();
    this.stream.end();
    this.closed();
    // A peer that does not read must not keep the socket open.
    setTimeout(() => this.stream.destroy(), 1000).unref?.();
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    const err = this.parser.push(chunk, (f) => {
      if (this.state !== 'closed') this.host.onFrame(this, f);
    });
    if (err) return this.fatal(err.code, err.message);
    if (this.parser.midFrame) this.partialClock.started(); // a closed connection's parser is stopped, never mid-frame
  }

  /** The parser asks the broker's budget before holding a frame that arrives in pieces (SPEC §8). */
  private partialBudget(budget: MemoryBudget): PartialBudget {
    return {
      hold: (bytes) => budget.holdPartial(bytes + BUFFER_OVERHEAD),
      release: (bytes, buffers) => budget.releasePartial(bytes + buffers * BUFFER_OVERHEAD),
      refused: (head) => this.refused(head),
    };
  }

  /** A frame that did not fit the budget: its request is refused with ENOBUFS (PROTOCOL 6.1); a hello is fatal. */
  private refused(head: FrameHead): void {
    const what = `a ${KIND_NAMES[head.kind] ?? 'frame'} of ${head.length} bytes arriving in pieces does not fit the broker's memory budget`;
    if (this.host.budget.refuse()) this.host.log('warn', `connection ${this.id} (${this.name || 'unnamed'}, pid ${this.pid}): ${what} (ENOBUFS; more refusals are counted in stats)`);
    if (this.state === 'hello') return this.fatal('ENOBUFS', what, head.kind);
    this.error('ENOBUFS', what, head.id, head.kind);
  }

  private onDrain(): void {
    this.tellLost();
  }

  private closed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.parser.stop();
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.partialClock.stop();
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.out.close();
    // A closed receiver releases every sender it held (reconnection while paused).
    this.release();
    this.host.onClose(this);
  }
}
