// The client's connection: requests and answers, the handshake, reconnection; its writes go through the Outbox.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { HEADER_SIZE, KIND_NAMES, Kind, PROTOCOL_VERSION } from '../protocol/constants.js';
import { headSize } from '../protocol/cbor.js';
import { encodeControl } from '../protocol/control.js';
import { QcopError } from '../protocol/errors.js';
import { encodeFrame, nameLength, payloadOf, type Frame } from '../protocol/frame.js';
import { decodeName } from '../protocol/names.js';
import { FrameParser } from '../protocol/parser.js';
import { INBOUND_BEFORE_WELCOME, type Target } from './dial.js';
import { LargeSends } from './large-send.js';
import { sessionOptions, type ClientOptions, type SessionOptions } from './options.js';
import { Outbox, type Item } from './outbox.js';
import { watchSocket } from './socket-watch.js';

export interface Pending {
  kind: Kind;
  channel: string;
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
  /** Safe to send again after a reconnection (flush, query, stats, listen, watch). */
  idempotent: boolean;
  frame: Buffer;
  /** Written to a connection (as opposed to waiting in the backlog). */
  inFlight: boolean;
  onSettle?: () => void;
}

export type State = 'connecting' | 'open' | 'disconnected' | 'closed';

/** The connection half of a client: requests, buffering while disconnected, the handshake and reconnection. */
export abstract class ClientSession extends EventEmitter {
  /** Limits the broker announced in its welcome (PROTOCOL 2.2). */
  limits: Record<string, unknown> = {};
  protected state: State = 'connecting';
  protected stream: Duplex | null = null;
  protected parser: FrameParser | null = null;
  protected nextRequestId = 1;
  protected readonly pending = new Map<number, Pending>();
  /** Every unsent byte, in order, and the backpressure state. */
  protected readonly outbox: Outbox<Pending>;
  /** Large messages by descriptor (PROTOCOL 8). */
  protected readonly large: LargeSends;
  protected reconnectTimer: NodeJS.Timeout | null = null;
  /** Stops watching the socket's folder (set while disconnected from a Unix socket). */
  private unwatchSocket: (() => void) | null = null;
  private dialing = false;
  protected attempt = 0;
  protected welcomeWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  protected readonly opts: SessionOptions;
  private incomingHeld = false;

  /** Use `connect()`. */
  constructor(private readonly target: Target, options: ClientOptions = {}) {
    super();
    this.opts = sessionOptions(options);
    this.outbox = new Outbox<Pending>({
      place: (big) => this.large.place(big),
      unslot: (big) => this.large.unslot(big),
      live: (p) => this.pending.get(p.frame.readUInt32LE(8)) === p,
      written: (p) => (p.inFlight = true),
      pressured: () => this.large.shm.pool.pressured,
      drain: () => this.emit('drain'),
      reportError: (e) => this.reportError(e),
    }, this.opts.highWaterMark);
    this.large = new LargeSends({
      writable: () => this.outbox.writable,
      holding: () => this.outbox.holding,
      writeNow: (frame) => this.outbox.writeNow(frame),
      writeInline: (b) => this.outbox.writeNow(this.buildFrame(Kind.Send, 0, b.id, 0, b.channel, b.message, b.payload)),
      control: (kind, flags, aux, payload, onError) => this.controlRequest(kind, flags, aux, payload, onError),
      newId: () => this.newId(),
      reportError: (e) => this.reportError(e),
      lost: (count, why) => this.emitLost(count, why),
      pump: () => this.outbox.pump(),
      drained: () => this.outbox.checkDrain(),
    }, target.local === true, options);
  }

  /** Where this client connects (socket path or URL). */
  get where(): string {
    return this.target.where;
  }

  /** True while connected to a broker. */
  get connected(): boolean {
    return this.state === 'open';
  }

  /** Bytes accepted by `send()` and not yet handed to the operating system. */
  get bufferedBytes(): number {
    return this.outbox.bytes;
  }

  /** Slots of this client's shared-memory pool not yet released by every receiver (PROTOCOL 8). */
  get poolInUse(): { slots: number; bytes: number } {
    return this.large.shm.pool.inUse;
  }

  /**
   * @internal For carriers that cannot pass messages on yet (links): stops (true) or restarts taking
   * frames from the broker. The broker then holds back whoever fills this client's queue (SPEC §2),
   * and treats this client as stuck once that lasts its stallMs.
   */
  holdIncoming(on: boolean): void {
    this.incomingHeld = on;
    if (this.state === 'open' && this.stream) this.applyHold(this.stream);
  }

  private applyHold(stream: Duplex): void {
    if (this.incomingHeld) stream.pause();
    else stream.resume();
  }

  /** @internal Opens the first connection; rejects with ENOBROKER after the handshake timeout. */
  async open(): Promise<void> {
    const stream = await this.target.dial();
    await this.handshake(stream);
    this.state = 'open';
    this.outbox.attach(stream);
    this.applyHold(stream);
  }

  /** @internal Errors without a promise go to the handle, else the client, else a process warning: never silent. */
  reportError(err: Error, handle?: EventEmitter): void {
    if (handle && handle.listenerCount('error') > 0) handle.emit('error', err);
    else if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err.message, { code: (err as QcopError).code ?? 'QCOP' });
  }

  /** `count` messages were lost for this receiver: a 'lost' event `{ count }`, else a process warning (never silent). */
  protected emitLost(count: number, why: string): void {
    if (!this.emit('lost', { count })) process.emitWarning(`qcop: ${count} message(s) lost: ${why}`, { code: 'QCOP_LOST' });
  }

  protected reportErrorIfLive(e: Error): void {
    if (this.state !== 'closed' && (e as QcopError).code !== 'ECLOSED') this.reportError(e);
  }

  protected checkOpen(): void {
    if (this.state === 'closed') throw new QcopError('ECLOSED', 'the client is closed');
  }

  protected buildFrame(kind: Kind, flags: number, id: number, aux: number, channel: string | Uint8Array, message: string | Uint8Array, payload?: Uint8Array, asByteString = false): Buffer {
    const data = payload ? payload.length + (asByteString ? headSize(payload.length) : 0) : 0;
    this.large.shm.checkFrame(kind !== Kind.Send || flags !== 0, HEADER_SIZE + nameLength(channel) + nameLength(message) + data, this.maxFrameBytes);
    return encodeFrame(kind, flags, id, aux, channel, message, payload, asByteString);
  }

  /** The broker's frame limit (from the welcome). */
  protected get maxFrameBytes(): number {
    return Number(this.limits.maxFrameBytes ?? 1 << 20);
  }

  protected newId(): number {
    const id = this.nextRequestId;
    this.nextRequestId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  protected request(kind: Kind, flags: number, aux: number, channel: string, message: string, payload: Uint8Array | undefined, idempotent: boolean, id = this.newId()): Promise<Frame> {
    const frame = this.buildFrame(kind, flags, id, aux, channel, message, payload);
    return new Promise<Frame>((resolve, reject) => {
      const p: Pending = { kind, channel, resolve, reject, idempotent, frame, inFlight: false };
      this.pending.set(id, p);
      try {
        this.outbox.enqueue({ frame, pending: p });
      } catch (err) {
        this.pending.delete(id);
        reject(err);
      }
    });
  }

  /** Writes a request now (ahead of held sends) whose answer matters only when it is an error. */
  protected controlRequest(kind: Kind, flags: number, aux: number, payload: Uint8Array | undefined, onError: (e: Error) => void): void {
    const id = this.newId();
    const frame = encodeFrame(kind, flags, id, aux, '', '', payload);
    const p: Pending = {
      kind, channel: '', idempotent: false, frame, inFlight: false, resolve: () => {},
      reject: (e) => { if ((e as QcopError).code !== 'ECLOSED') onError(e); },
    };
    this.pending.set(id, p);
    this.outbox.writeNow(frame, p);
  }

  protected async handshake(stream: Duplex): Promise<void> {
    this.stream = stream;
    this.parser = new FrameParser(INBOUND_BEFORE_WELCOME);
    const parser = this.parser;
    stream.on('data', (chunk: Buffer) => {
      if (this.stream !== stream) return;
      const err = parser.push(chunk, (f) => this.onFrame(f));
      if (err) {
        const e = new QcopError(err.code, `from ${this.where}: ${err.message}`);
        if (this.welcomeWaiter) this.welcomeWaiter.reject(e); else this.reportError(e);
        stream.destroy();
      }
    });
    stream.on('error', () => {});
    stream.on('close', () => this.onStreamClose(stream));
    const welcome = new Promise<void>((resolve, reject) => (this.welcomeWaiter = { resolve, reject }));
    stream.write(encodeFrame(Kind.Hello, 0, process.pid, PROTOCOL_VERSION, '', this.opts.name, encodeControl({ features: this.opts.echo ? this.large.shm.helloFeatures() : [...this.large.shm.helloFeatures(), 'noecho'] })));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QcopError('ENOBROKER', `no broker handshake on ${this.where} within ${this.opts.connectTimeoutMs} ms`)), this.opts.connectTimeoutMs);
    });
    try {
      await Promise.race([welcome, timeout]);
    } catch (err) {
      this.stream = null;
      stream.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
      this.welcomeWaiter = null;
    }
  }

  protected onAnswer(f: Frame): void {
    const p = this.pending.get(f.id);
    if (f.kind === Kind.Error) {
      const code = decodeName(f.raw, f.channelEnd, f.messageEnd) || 'EPROTO';
      const text = payloadOf(f).toString('utf8');
      const channel = decodeName(f.raw, HEADER_SIZE, f.channelEnd) || p?.channel || undefined;
      const kind = KIND_NAMES[p?.kind ?? f.aux] ?? 'unknown';
      const err = QcopError.fromWire(code, text, { request: { kind, ...(channel ? { channel } : {}) } });
      if (p) {
        this.pending.delete(f.id);
        p.onSettle?.();
        p.reject(err);
      } else if (this.welcomeWaiter) {
        this.welcomeWaiter.reject(err);
      } else {
        this.reportError(err);
      }
      return;
    }
    if (!p) return; // answer to a request that timed out meanwhile
    this.pending.delete(f.id);
    p.onSettle?.();
    p.resolve(f);
  }

  protected failPending(which: (p: Pending) => boolean, why: string): void {
    for (const [id, p] of [...this.pending]) {
      if (!which(p)) continue;
      this.pending.delete(id);
      p.onSettle?.();
      p.reject(new QcopError('ECLOSED', why, { request: { kind: KIND_NAMES[p.kind] ?? 'unknown', channel: p.channel || undefined } }));
    }
  }

  protected onStreamClose(stream: Duplex): void {
    if (this.stream !== stream) return;
    this.stream = null;
    const unconfirmed = this.outbox.detach(stream);
    // Closed before the welcome: say so now rather than when the handshake timer runs out.
    this.welcomeWaiter?.reject(new QcopError('ENOBROKER', `the connection to ${this.where} closed during the handshake`));
    if (this.state === 'closed' || this.state === 'connecting') return;
    this.state = 'disconnected';
    this.large.disconnected();
    // Calls and counted sends may or may not have reached the broker: never guess, reject them.
    this.failPending((p) => p.inFlight && !p.idempotent, `connection to ${this.where} lost`);
    if (!this.opts.reconnect) {
      this.failPending(() => true, `connection to ${this.where} lost`);
      this.state = 'closed';
      this.emit('disconnected', { unconfirmed });
      this.emit('close');
      return;
    }
    this.emit('disconnected', { unconfirmed });
    this.scheduleReconnect();
  }

  protected scheduleReconnect(): void {
    const delay = Math.min(this.opts.reconnectMaxDelayMs, 50 * 2 ** Math.min(this.attempt, 10));
    this.attempt++;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.reconnect(), delay * (0.75 + Math.random() * 0.5));
    // A broker restarted on the same socket is dialled the moment its socket appears, not at the next step.
    if (!this.unwatchSocket && this.target.socketPath && this.opts.reconnectWatch) {
      this.unwatchSocket = watchSocket(this.target.socketPath, () => {
        if (this.state !== 'disconnected' || this.dialing) return;
        this.attempt = 0;
        if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
        void this.reconnect();
      });
    }
  }

  /** Stops the socket watch (connected again, or closed). */
  protected stopWatching(): void {
    this.unwatchSocket?.();
    this.unwatchSocket = null;
  }

  protected async reconnect(): Promise<void> {
    this.reconnectTimer = null;
    if (this.state !== 'disconnected') return this.stopWatching();
    if (this.dialing) return;
    this.dialing = true;
    try {
      const stream = await this.target.dial();
      if (this.state !== 'disconnected') {
        stream.destroy();
        return;
      }
      await this.handshake(stream);
    } catch {
      if (this.state === 'disconnected') this.scheduleReconnect();
      else this.stopWatching();
      return;
    } finally {
      this.dialing = false;
    }
    this.stopWatching();
    if (this.state !== 'disconnected') return;
    this.attempt = 0;
    this.state = 'open';
    const stream = this.stream!;
    const backlog = this.outbox.attach(stream);
    this.applyHold(stream);
    // 'reconnected' means restored: listeners and watches are registered again at the broker.
    void this.restore(backlog).then(() => {
      if (this.state === 'open' && this.stream === stream) this.emit('reconnected');
    });
    this.outbox.checkDrain();
  }

  /** Handles one frame from the broker other than answers (messages, events, notices). */
  protected abstract onFrame(f: Frame): void;

  /** Re-registers what the client holds after a reconnection, then sends what waited in the Outbox meanwhile. */
  protected abstract restore(backlog: Array<Item<Pending>>): Promise<void>;
}
