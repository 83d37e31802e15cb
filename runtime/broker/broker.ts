// The broker as a library: accepts connections on its socket (or handed over), routes, reports figures.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { BASE_FEATURES, Flag, Kind, PROTOCOL_VERSION } from '../protocol/constants.js';
import { encodeFrame, type Frame } from '../protocol/frame.js';
import { QcopError } from '../protocol/errors.js';
import { nativeAvailable } from '../native/index.js';
import { qcopEntries } from '../shm/names.js';
import { CALL_BYTES, MemoryBudget } from './budget.js';
import { CallTable } from './calls.js';
import { Connection, type ConnectionHost } from './connection.js';
import { Descriptors } from './descriptors.js';
import { dispatch } from './handlers.js';
import { duplexPair } from './inprocess.js';
import { resolveOptions, type BrokerOptions, type ResolvedOptions } from './options.js';
import { Registry } from './registry.js';
import { ShmRouter } from './shm.js';
import { Pauses } from './pauses.js';
import { Departed } from './departed.js';
import { peerIdentityOf, type PeerIdentity } from './peer.js';
import { Turns } from './turns.js';
import { ValidNames } from './valid-names.js';
import { claimSocketPath, defaultSocketPath, resolveGroup, setSocketAccess } from './socket-path.js';
import { WatchTable } from './watches.js';
import { Access } from './access.js';
import { UserQuotas } from './user-quotas.js';

const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;

import type { Broker, BrokerCounters } from './facade.js';
import { revoke } from './revoke.js';
import { MonitorTap } from './monitor.js';
import { ChannelFigures } from './channel-figures.js';
import { collectStats } from './stats.js';
import { tapClient, tapClose, tapTimeout } from './monitor-events.js';
import { Durable } from './durable/durable.js';

export type { Broker, BrokerCounters };

/** The broker's core: routing state and the connection host. Not exported from the package (runtime/index.ts). */
export class BrokerCore extends EventEmitter implements ConnectionHost, Broker {
  readonly options: ResolvedOptions;
  readonly registry: Registry<Connection>;
  /** Names seen valid recently (handlers.ts). */
  readonly validNames = new ValidNames();
  /** Watches; their events are told in turns, in the order the registrations happened. */
  readonly watches = new WatchTable<Connection>((job) => this.turns.later(job));
  /** Fair turns between connections whose requests cost matching work (SPEC §8). */
  readonly turns: Turns<Connection, Frame>;
  /** Why connections are paused: fair turns and backpressure share it (pauses.ts). */
  readonly pauses = new Pauses<Connection>();
  /** The connection whose frame is being dispatched: what it sends fills receivers (backpressure). */
  sender: Connection | null = null;
  readonly calls: CallTable<Connection>;
  /** Memory held for clients against `maxMemoryBytes` (SPEC §8). */
  readonly budget: MemoryBudget;
  /** Large messages by descriptor (PROTOCOL 8). */
  readonly shm: ShmRouter;
  /** Removes what departed clients left in /dev/shm. */
  readonly departed: Departed;
  /** SPEC §9: the policy of `aclDir` (everything allowed without one). */
  access: Access;
  /** SPEC §9: what each user holds, against the policy's quotas. */
  readonly quotas = new UserQuotas((c) => this.access.identity(c as Connection), (who) => this.access.quotaFor(who));
  /** File descriptors: the limit, refusals near it, failed accepts (SPEC §8). */
  readonly descriptors = new Descriptors((level, text) => this.log(level, text));
  /** SPEC §12: the connections that monitor, and the fan-out of events to them. */
  readonly monitor = new MonitorTap<Connection>();
  /** SPEC §12 `qcop top`: per-channel counts, kept while asked for. */
  readonly figures = new ChannelFigures();
  readonly counters: BrokerCounters = {
    routed: 0, delivered: 0, unrouted: 0, droppedSlow: 0, disconnectedSlow: 0,
    calls: 0, stuckReceivers: 0, lateReplies: 0, protocolErrors: 0, connectionsRefused: 0,
  };
  /** SPEC §10: queued channels, retained values, activation (durable/durable.ts). */
  readonly durable: Durable;
  private readonly conns = new Set<Connection>();
  private readonly statsSources = new Map<string, () => Record<string, unknown>>();
  private readonly servers: net.Server[] = [];
  private dirty: Connection[] = [];
  private flushScheduled = false;
  private seq = 0;
  private nextConnId = 1;
  private readonly started = Date.now();
  private closing: Promise<void> | null = null;

  /** Use `startBroker()`; the constructor does not listen. */
  constructor(options: ResolvedOptions) {
    super();
    this.options = options;
    this.turns = new Turns<Connection, Frame>((c, f) => {
      const before = this.sender;
      this.sender = c;
      try {
        dispatch(this, c, f);
      } finally {
        this.sender = before;
      }
    }, this.pauses);
    this.shm = new ShmRouter(this);
    this.departed = new Departed(this);
    this.registry = new Registry<Connection>((name, registered, seq) => this.watches.changed(name, registered, seq));
    this.calls = new CallTable<Connection>((call) => {
      if (call.answered) return;
      call.caller.error('ETIMEDOUT', `no reply on ${call.channel} in time`, call.requestId, Kind.Call, call.channel);
      if (this.monitor.active) tapTimeout(this, call.caller, call.id, call.channel);
    }, (call) => this.quotas.give(call.caller, 'callsInFlight'));
    this.budget = new MemoryBudget(options.maxMemoryBytes, options.maxPartialBytes, () => this.calls.size * CALL_BYTES);
    this.access = new Access(null, null, (level, text) => this.log(level, text));
    this.durable = new Durable(this, options);
  }

  /** Re-reads `aclDir` (SIGHUP, `qcop broker --reload`): applied to the connections there are; a bad file keeps the old policy. */
  reload(): boolean {
    if (!this.access.reload()) return false;
    this.quotas.refreshLimits();
    revoke(this, this.conns);
    return true;
  }

  get maxFrameBytes(): number {
    return this.options.maxFrameBytes;
  }
  get maxQueueBytes(): number {
    return this.options.maxQueueBytes;
  }
  get slowConsumer(): 'drop' | 'disconnect' {
    return this.options.slowConsumer;
  }
  get maxPoolBytes(): number {
    return this.options.maxPoolBytes;
  }
  get partialFrameTimeoutMs(): number {
    return this.options.partialFrameTimeoutMs;
  }
  get backpressure(): boolean {
    return this.options.backpressure;
  }
  get stallMs(): number {
    return this.options.stallMs;
  }
  /** The high-water mark of a receiver's queue (docs/CONFIG.md): half of `maxQueueBytes`. */
  get highWaterBytes(): number {
    return this.options.maxQueueBytes / 2;
  }
  /** The low-water mark: a quarter of `maxQueueBytes`. */
  get lowWaterBytes(): number {
    return this.options.maxQueueBytes / 4;
  }

  /** The gid clients give their pool segments (group read), when the broker has a group (SPEC §3). */
  get shmGroup(): number | undefined {
    if (this.options.group === undefined) return undefined;
    this.gid ??= resolveGroup(this.options.group);
    return this.gid;
  }
  private gid: number | undefined;

  /** The Unix socket path this broker listens on. */
  get socketPath(): string {
    return this.options.socket;
  }

  /** Listens on the Unix socket (SPEC §6 rules for the path). */
  async listenUnix(): Promise<void> {
    const socketPath = this.options.socket;
    await claimSocketPath(socketPath, this.options.group);
    const server = net.createServer((s) => this.accept(s, 'unix'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(QcopError.fromSystem(err, `cannot listen on ${socketPath}`));
      });
      server.listen(socketPath, () => resolve());
    });
    try {
      setSocketAccess(socketPath, this.options.group); // SPEC §6: 0600, or 0660 with the group
    } catch (err) {
      server.close();
      fs.rmSync(socketPath, { force: true });
      throw err;
    }
    this.servers.push(server);
    server.on('error', (err) => this.acceptFailed(err, 'socket server'));
  }

  /** A listening socket reported an error: lack of descriptors is counted (SPEC §8), anything else logged. */
  acceptFailed(err: NodeJS.ErrnoException, where: string): void {
    if (!this.descriptors.acceptFailed(err)) this.log('error', `${where}: ${err.message}`);
  }

  /** Adds an already connected stream; `identity` is who a carrier authenticated (SPEC §9), else the kernel's peer (Unix). */
  accept(stream: Duplex, transport: string, identity?: PeerIdentity | null): Connection | null {
    if (this.closing) {
      stream.destroy();
      return null;
    }
    // SPEC §8: the last descriptors stay for the clients already served. The descriptor is freed
    // at once, not after a grace period: refusals held open would exhaust what is left, and the
    // system then drops connections unseen. The client may get the ELIMIT frame or only the close.
    if (transport !== 'inprocess' && this.descriptors.exhausted(this.conns.size)) {
      stream.write(encodeFrame(Kind.Error, 0, 0, 0, '', 'ELIMIT', Buffer.from('the broker is out of file descriptors')));
      stream.destroy();
      return null;
    }
    if (this.conns.size >= this.options.maxConnections) {
      this.counters.connectionsRefused++;
      stream.end(encodeFrame(Kind.Error, 0, 0, 0, '', 'ELIMIT', Buffer.from(`more than ${this.options.maxConnections} connections`)));
      setTimeout(() => stream.destroy(), 1000).unref?.();
      return null;
    }
    const conn = new Connection(this, stream, this.nextConnId++, transport, this.options.handshakeTimeoutMs, identity ?? peerIdentityOf(stream, transport));
    if (this.nextConnId > 0xfffffff0) this.nextConnId = 1;
    // SPEC §9: the user's connections and new connections per second.
    if (!this.quotas.connect(conn)) {
      const uid = this.access.identity(conn).uid;
      stream.end(encodeFrame(Kind.Error, 0, 0, 0, '', 'ELIMIT', Buffer.from(`uid ${uid} is at its connection quota`)));
      setTimeout(() => stream.destroy(), 1000).unref?.();
      return null;
    }
    this.conns.add(conn);
    this.descriptors.accepted();
    return conn;
  }

  /** A client stream connected to this broker inside the same process (no socket). */
  connectInProcess(): Duplex {
    if (this.closing) throw new QcopError('ENOBROKER', `in-process broker ${this.options.name} is closed`);
    const [client, server] = duplexPair();
    this.accept(server, 'inprocess');
    return client;
  }

  onFrame(conn: Connection, frame: Frame): void {
    this.turns.frame(conn, frame);
  }

  onClose(conn: Connection): void {
    if (!this.conns.delete(conn)) return;
    this.turns.closed(conn);
    this.quotas.disconnect(conn);
    if (this.monitor.active && !this.monitor.remove(conn) && conn.greeted) tapClose(this, conn, conn.listening);
    for (const name of conn.listening) this.registry.remove(name, conn);
    conn.listening.clear();
    for (const w of conn.watches.values()) this.watches.remove(w);
    conn.watches.clear();
    this.shm.closed(conn);
    this.durable.closed(conn);
    this.departed.left(conn.peer?.pid);
    for (const call of this.calls.dropConnection(conn)) {
      call.caller.error('ENOLISTENER', `every receiver on ${call.channel} went away without answering`, call.requestId, Kind.Call, call.channel);
    }
  }

  markDirty(conn: Connection): void {
    this.dirty.push(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flushDirty());
    }
  }

  userQueued(conn: Connection, delta: number): void {
    this.quotas.queued(conn, delta);
  }

  userShm(conn: Connection, bytes: number): boolean {
    if (bytes >= 0) return this.quotas.take(conn, 'shmBytes', bytes);
    this.quotas.give(conn, 'shmBytes', -bytes);
    return true;
  }

  userQueueFits(conn: Connection, bytes: number): boolean {
    return this.quotas.queueFits(conn, bytes);
  }

  countProtocolError(_conn: Connection): void {
    this.counters.protocolErrors++;
  }

  countStuck(conn: Connection): void {
    this.counters.stuckReceivers++;
    if (this.monitor.active) tapClient(this, conn, 'stuck');
  }

  countSlow(conn: Connection, disconnected: boolean): void {
    if (disconnected) this.counters.disconnectedSlow++;
    else this.counters.droppedSlow++;
    if (disconnected && this.monitor.active) tapClient(this, conn, 'slow');
  }

  toldLost(conn: Connection, n: number): void {
    if (this.monitor.active) tapClient(this, conn, 'lost', { count: n });
  }

  log(level: keyof typeof LEVELS, text: string): void {
    if (LEVELS[level] <= LEVELS[this.options.logLevel]) process.stderr.write(`qcopd: ${level}: ${text}\n`);
    this.emit('log', level, text);
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  /** What Welcome tells a client (PROTOCOL 2.2). */
  welcome(): Record<string, unknown> {
    const o = this.options;
    return {
      broker: o.name,
      pid: process.pid,
      version: PROTOCOL_VERSION,
      features: [...BASE_FEATURES, 'noecho', ...(this.shm.enabled ? ['shm'] : []), 'durable'],
      maxFrameBytes: o.maxFrameBytes,
      maxListeners: o.maxListeners,
      maxWatches: o.maxWatches,
      maxQueueBytes: o.maxQueueBytes,
      maxCallsInFlight: o.maxCallsInFlight,
      // PROTOCOL 8.1: present only when this broker maps pools.
      ...(this.shm.enabled ? { shmThreshold: o.shmThreshold, maxPoolBytes: o.maxPoolBytes, ...(this.shmGroup === undefined ? {} : { shmGroup: this.shmGroup }) } : {}),
    };
  }

  /** Adds figures of a part outside the broker (a carrier) to `stats()` under `carriers.<name>`. */
  addStatsSource(name: string, source: () => Record<string, unknown>): void {
    this.statsSources.set(name, source);
  }

  /** The broker's figures (SPEC §4 `qcop stats`); with `channels`, the per-channel figures of `qcop top` too. */
  stats(channels = false): Record<string, unknown> {
    return collectStats(this, this.conns, this.statsSources, this.started, channels);
  }

  /** Stops listening, closes every connection, removes the socket file. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      for (const server of this.servers) server.close();
      for (const c of [...this.conns]) c.stream.destroy();
      this.calls.clear();
      this.shm.closeAll();
      this.durable.close();
      this.departed.close();
      if (!this.options.noSocket) {
        try {
          fs.unlinkSync(this.options.socket);
        } catch {
          // already gone
        }
      }
      await Promise.all(this.servers.map((s) => new Promise<void>((r) => (s.listening ? s.once('close', () => r()) : r()))));
      this.emit('close');
    })();
    return this.closing;
  }

  private flushDirty(): void {
    this.flushScheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (const c of dirty) c.flushOut();
  }
}

/** Starts a broker: validates options, claims the socket path, listens. */
export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const resolved = resolveOptions(options, options.socket ?? defaultSocketPath());
  const broker = new BrokerCore(resolved);
  // SPEC §9: a policy that does not load stops the start (EINVAL naming the file); a reload keeps the old one.
  const dir = resolved.aclDir;
  if (dir) {
    const { loadPolicy } = await import('./acl/policy.js');
    const brokerUid = process.geteuid?.() ?? 0;
    const load = () => loadPolicy(dir, { brokerUid });
    broker.access = new Access(load(), load, (level, text) => broker.log(level, text));
  }
  // SPEC §3: stale segments (pools of a broker killed with its clients) are reclaimed at start.
  // With no qcop object in /dev/shm (the usual boot) the sweep's code and the addon stay unloaded.
  if (qcopEntries().length > 0 && nativeAvailable()) {
    try {
      const { collectGarbage } = await import('../shm/gc.js');
      const { removed } = collectGarbage();
      if (removed.length) broker.log('info', `reclaimed ${removed.length} stale shared-memory object(s)`);
    } catch (e) {
      broker.log('warn', `shared-memory garbage collection failed: ${(e as Error).message}`);
    }
  }
  if (!resolved.noSocket) await broker.listenUnix();
  broker.durable.started(); // SPEC §10: stored messages nobody listens to start their services
  return broker;
}
