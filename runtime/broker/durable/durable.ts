// SPEC §10 in the broker: queued channels, retained values and activation behind a few hooks of handlers.ts and broker.ts.
import * as os from 'node:os';
import * as path from 'node:path';
import { Flag, Kind } from '../../protocol/constants.js';
import { QcopError } from '../../protocol/errors.js';
import { encodeFrame, payloadOf, type Frame } from '../../protocol/frame.js';
import { Pattern } from '../../protocol/pattern.js';
import { channelProblem } from '../../protocol/names.js';
import type { BrokerCore } from '../broker.js';
import type { Connection } from '../connection.js';
import { DEAD_LETTER, Queues } from './queued.js';
import { RetainedValues } from './retained.js';
import { Store, type StoredMsg } from './store.js';
import { deadLetterData } from './dead-letter.js';
import { Activation } from './activation.js';
import { tapSend } from '../monitor-events.js';

/** The options of this part (docs/CONFIG.md, docs/DURABLE.md). */
export interface DurableOptions {
  queued?: string[];
  stateDir?: string;
  durability: 'sync' | 'batch';
  syncIntervalMs: number;
  maxStoredBytes: number;
  maxDeliveries: number;
  maxUnackedPerClient: number;
  maxRetainedBytes: number;
  servicesDir?: string;
  activationTimeoutMs: number;
  maxActivationChannels: number;
  maxActivationWaiting: number;
}

/** SPEC §10's default stateDir: /var/lib/qcop for root, else the user's state folder. */
export function defaultStateDir(): string {
  if (process.geteuid?.() === 0) return '/var/lib/qcop';
  return path.join(process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local/state'), 'qcop');
}

/** Checks the `queued` option: an array of channel names or patterns. */
export function checkQueued(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new QcopError('EINVAL', 'option queued: must be an array of channel names or patterns');
  for (const p of v as string[]) {
    const problem = channelProblem(p);
    if (problem) throw new QcopError('EINVAL', `option queued: '${p}': ${problem}`);
  }
  return v as string[];
}

export class Durable {
  readonly store: Store | null;
  readonly queues: Queues | null;
  readonly retained: RetainedValues;
  readonly activation: Activation;
  private readonly patterns: Pattern[];
  private readonly isQueuedCache = new Map<string, boolean>();

  constructor(private readonly b: BrokerCore, private readonly o: DurableOptions) {
    this.patterns = checkQueued(o.queued).map((p) => new Pattern(p));
    if (this.patterns.length > 0) {
      const dir = o.stateDir || defaultStateDir();
      try {
        this.store = new Store(dir, o);
      } catch (err) {
        throw err instanceof QcopError ? err : QcopError.fromSystem(err, `cannot open the durable store in ${dir} (stateDir)`);
      }
      for (const p of this.store.problems) b.log('warn', `durable store: ${p}`);
      this.queues = new Queues(this.store, {
        receivers: (ch) => this.receivers(ch),
        idle: (ch) => this.activation.wanted(ch),
        deadLetter: (m) => this.deadLetter(m),
        log: (level, text) => b.log(level, text),
      }, o);
    } else {
      this.store = null;
      this.queues = null;
    }
    this.retained = new RetainedValues(this.store, o.maxRetainedBytes);
    this.activation = new Activation(b, o);
  }

  /** True when any channel is queued. */
  get hasQueued(): boolean {
    return this.patterns.length > 0;
  }

  /** True when `channel` is queued (SPEC §10: a pattern of the `queued` option matches it). */
  isQueued(channel: string): boolean {
    if (this.patterns.length === 0) return false;
    let v = this.isQueuedCache.get(channel);
    if (v === undefined) {
      if (this.isQueuedCache.size > 4096) this.isQueuedCache.clear();
      v = this.patterns.some((p) => p.matches(channel));
      this.isQueuedCache.set(channel, v);
    }
    return v;
  }

  /**
   * The send hook (handlers.ts): a retained value is kept, a message of a queued channel stored
   * and delivered from the store, and a message nobody listens to on an activatable channel waits
   * for its program. Returns true when it answered the frame.
   */
  send(c: Connection, f: Frame, channel: string, receivers: number): boolean {
    const retain = (f.flags & Flag.Retain) !== 0;
    const queued = this.isQueued(channel);
    if (!retain && !queued) return receivers === 0 && this.activation.park(c, f, channel);
    // Data in the sender's shared-memory pool are copied out of its slot (freed at once): stored bytes, delivered inline.
    const data = f.flags & Flag.Shm ? this.b.shm.copyOut(c, f, this.b.options.maxFrameBytes - f.messageEnd, queued) : payloadOf(f);
    if (data === null) return true;
    try {
      if (retain) this.retained.set(channel, this.messageOf(f), Buffer.from(data), queued);
      if (!queued) return false;
      const want = (f.flags & Flag.WantCount) !== 0;
      const id = f.id;
      const bytes = data.length;
      this.queues!.send(channel, this.messageOf(f), Buffer.from(data), (err, n) => {
        this.b.counters.routed++;
        this.b.counters.delivered += n;
        // SPEC §12: a stored message is a send like any other for `qcop monitor` and `qcop top`.
        if (this.b.figures.on) this.b.figures.count(channel, bytes, 0);
        if (this.b.monitor.active) tapSend(this.b, c, f, channel, n);
        if (err) this.b.log('warn', `durable store: ${err.message}`);
        if (!want || c.state !== 'open') return;
        // SPEC §10 sync: the answer says "stored" only once it is on disk.
        if (err) c.error((err as QcopError).code ?? 'ESYSTEM', err.message.replace(/^E[A-Z0-9]+: /, ''), id, Kind.Send, channel);
        else c.push(encodeFrame(Kind.Result, Flag.Queued, id, n, '', ''));
      });
      if (!want) c.sent++;
    } catch (err) {
      const e = err as QcopError;
      c.error(e.code ?? 'ESYSTEM', e.message.replace(/^E[A-Z0-9]+: /, ''), f.id, f.kind, channel);
    }
    return true;
  }

  /** The call hook: a call nobody listens to on an activatable channel waits for its program (within its timeout). */
  call(c: Connection, f: Frame, channel: string): boolean {
    return this.activation.park(c, f, channel);
  }

  /** The listen hook, after `c` registered `name`: retained values first, then what waits on queued channels. */
  listened(c: Connection, name: string): void {
    for (const v of this.retained.forListener(name)) {
      if (!this.b.access.filter([c], v.channel).length) continue;
      c.deliver(encodeFrame(Kind.Msg, Flag.Retained, 0, 0, v.channel, v.message, v.data));
    }
    this.queues?.listened(name);
    this.activation.registered(name);
  }

  /** The broker accepts connections: channels with stored messages and no listener start their services. */
  started(): void {
    this.queues?.kick();
  }

  /** The Ack frame (PROTOCOL 3.16). */
  ack(c: Connection, id: number): void {
    this.queues?.ack(c, id);
  }

  /** The unlisten hook: messages `c` held on queued channels it no longer listens to go to the others (or wait). */
  unlistened(c: Connection): void {
    this.queues?.released(c, (ch) => this.b.registry.route(ch).includes(c));
  }

  /** A connection is gone: what it held is delivered again. */
  closed(c: Connection): void {
    this.queues?.closed(c);
    this.activation.closed(c);
  }

  stats(): Record<string, unknown> {
    return {
      queued: this.patterns.map((p) => p.source),
      stateDir: this.store?.dir ?? null,
      durability: this.o.durability,
      storedMessages: this.store?.storedMessages ?? 0,
      storedBytes: this.store?.storedBytes ?? 0,
      segments: this.store?.segmentCount ?? 0,
      unacked: this.queues?.unackedTotal ?? 0,
      deadLetters: this.queues?.deadLetters ?? 0,
      tornRecords: this.store?.problems ?? [],
      channels: this.queues?.stats() ?? {},
      retained: { values: this.retained.count, bytes: this.retained.bytes },
      activations: this.activation.stats(),
    };
  }

  close(): void {
    this.activation.close();
    this.store?.close();
  }

  private receivers(channel: string): Connection[] {
    return this.b.access.filter(this.b.registry.route(channel), channel);
  }

  private messageOf(f: Frame): string {
    return f.raw.toString('utf8', f.channelEnd, f.messageEnd);
  }

  /** SPEC §10: a message delivered `maxDeliveries` times goes to qcop/dead-letter (stored there when that channel is queued). */
  private deadLetter(m: StoredMsg): void {
    const data = deadLetterData(m);
    if (this.isQueued(DEAD_LETTER)) {
      try {
        this.queues!.send(DEAD_LETTER, m.message, data, () => {});
        return;
      } catch (err) {
        this.b.log('warn', `cannot store a dead letter: ${(err as Error).message}`);
      }
    }
    const frame = encodeFrame(Kind.Msg, 0, this.b.nextSeq(), 0, DEAD_LETTER, m.message, data);
    for (const r of this.receivers(DEAD_LETTER)) r.deliver(frame);
  }
}
