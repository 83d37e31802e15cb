// The client's API: send, flush, deliver, isRegistered, call, listen, watch. A facade over its parts: the Session
// (connection, requests, Outbox, large messages) and the Subscriptions (listeners, watches, what they receive).
import { EventEmitter } from 'node:events';
import { DEFAULT_CALL_TIMEOUT_MS, Flag, Kind, MAX_CALL_TIMEOUT_MS } from '../protocol/constants.js';
import { decodeData, encodeData } from '../protocol/data.js';
import { decodeControl, encodeControl } from '../protocol/control.js';
import { QcopError, isErrorCode } from '../protocol/errors.js';
import { encodeFrame, payloadOf, type Frame } from '../protocol/frame.js';
import type { Listener, Watch, WatchEvent } from './handles.js';
import { SendNames } from './send-names.js';
import type { CallAnswerer, ReceivedMessage } from './message.js';
import { expose as exposeOn, proxy as proxyOf, type ExposedObject, type ExposeOptions, type Proxied, type ProxyOptions, type SignalMap } from './typed.js';
import { Monitoring, type MonitorEvent } from './monitor.js';
import type { Target } from './dial.js';
import type { ClientOptions } from './options.js';
import { Session } from './session.js';
import { Subscriptions } from './subscriptions.js';

export type { ClientOptions } from './options.js';

/** Options of `send`, `deliver` and `publish` (SPEC §10). */
export interface SendOptions {
  /** Keep this message as the channel's retained value (no data: clear it). */
  retain?: boolean;
  /**
   * `send()` only, data a `Uint8Array` above `shmThreshold`: the caller hands the bytes over and changes
   * them no more. When no pool slot is free, the client then keeps a reference and copies them into a
   * slot once one frees, instead of copying them first to keep them (docs/SHM.md §9). Without it, a
   * send never depends on what the caller does with its buffer afterwards.
   */
  transfer?: boolean;
}

/** A connection to a qcop broker (SPEC §3). Create it with `connect()`. */
export class Client extends EventEmitter implements CallAnswerer {
  /** The connection: requests and answers, the Outbox, large messages, reconnection. */
  private readonly session: Session;
  /** Listeners and watches, and what the broker sends them. */
  private readonly subscriptions: Subscriptions;
  private readonly names = new SendNames();
  private readonly monitoring: Monitoring;

  /** Use `connect()`. */
  constructor(target: Target, options: ClientOptions = {}) {
    super();
    const session = new Session(target, options, {
      events: this,
      frame: (f) => this.onFrame(f),
      restore: () => this.restore(),
    });
    this.session = session;
    this.subscriptions = new Subscriptions({
      request: (...args) => session.request(...args),
      newId: () => session.newId(),
      reportError: (err, handle) => session.reportError(err, handle),
      reportErrorIfLive: (err) => session.reportErrorIfLive(err),
      state: () => session.state,
      acknowledger: (id) => this.acknowledger(id),
      receiveLarge: (f, channel, message, targets) => session.large.receive(f, channel, message, targets),
      answerer: this,
    });
    this.monitoring = new Monitoring({ monitorRequest: (p) => session.request(Kind.Monitor, 0, 0, '', '', p, true) });
  }

  /** Limits the broker announced in its welcome (PROTOCOL 2.2). */
  get limits(): Record<string, unknown> {
    return this.session.limits;
  }

  /** Where this client connects (socket path or URL). */
  get where(): string {
    return this.session.where;
  }

  /** True while connected to a broker. */
  get connected(): boolean {
    return this.session.state === 'open';
  }

  /** Bytes accepted by `send()` and not yet handed to the operating system. */
  get bufferedBytes(): number {
    return this.session.bufferedBytes;
  }

  /** Slots of this client's shared-memory pool not yet released by every receiver (PROTOCOL 8). */
  get poolInUse(): { slots: number; bytes: number } {
    return this.session.poolInUse;
  }

  /**
   * @internal For carriers that cannot pass messages on yet (links): stops (true) or restarts taking
   * frames from the broker. The broker then holds back whoever fills this client's queue (SPEC §2),
   * and treats this client as stuck once that lasts its stallMs.
   */
  holdIncoming(on: boolean): void {
    this.session.holdIncoming(on);
  }

  /** @internal Opens the first connection; rejects with ENOBROKER after the handshake timeout. */
  open(): Promise<void> {
    return this.session.open();
  }

  /** @internal Errors without a promise go to the handle, else the client, else a process warning: never silent. */
  reportError(err: Error, handle?: EventEmitter): void {
    this.session.reportError(err, handle);
  }

  /**
   * Sends a message to every process listening on `channel` (SPEC §2). Returns false once the
   * client holds more than its high-water mark; `'drain'` follows. While disconnected the message
   * is buffered up to the high-water mark, and past it `send` throws ENOBUFS: nothing is dropped silently.
   * Data above `shmThreshold` go through the shared-memory pool when the broker is local
   * (PROTOCOL 8); when the pool is full the message waits in the client and `send` returns false.
   */
  send(channel: string, message: string, data?: unknown, options?: SendOptions): boolean {
    this.session.checkOpen();
    this.names.check(channel, message);
    // SPEC §10: a retained value travels inline (the broker keeps its bytes).
    if (options?.retain) return this.sendInline(channel, message, Flag.Retain, encodeData(data));
    const { outbox, large } = this.session;
    if (data instanceof Uint8Array) {
      // Before a loan is taken back, so that a refused send leaves it to the caller.
      outbox.checkRoom(0);
      const loaned = large.claim(channel, message, data, () => this.session.newId());
      if (loaned && 'big' in loaned) return outbox.accepted(outbox.enqueue({ big: loaned.big }));
      const bytes = loaned ? loaned.copy : data;
      if (large.direct(channel, message, bytes)) return outbox.accepted(true);
      // The common small case: CBOR head and bytes go straight into the frame, no encoder, one copy.
      if (!large.wantsBytes(bytes.length)) return this.sendInline(channel, message, 0, bytes, true);
      // Handed over: wait for a slot as they are, the head is written in front of them there (one copy).
      if (options?.transfer && large.takesBytes(bytes.length)) return outbox.accepted(outbox.enqueue({ big: { channel, message, id: this.session.newId(), payload: bytes, bytes: true } }));
      data = bytes;
    }
    const payload = encodeData(data);
    if (large.takes(payload.length)) return outbox.accepted(outbox.enqueue({ big: { channel, message, id: this.session.newId(), payload } }));
    return this.sendInline(channel, message, 0, payload);
  }

  /** One send frame into the Outbox (names checked already); what send() returns. */
  private sendInline(channel: string, message: string, flags: number, payload: Uint8Array, asByteString = false): boolean {
    const frame = this.session.buildFrame(Kind.Send, flags, this.session.newId(), 0, this.names.channelBytes(channel), this.names.messageBytes(message), payload, asByteString);
    return this.session.outbox.accepted(this.session.outbox.enqueue({ frame }));
  }

  /**
   * Lends a `Buffer` of `byteLength` bytes inside this client's shared-memory pool: fill it in
   * place and pass it (or a prefix `subarray(0, n)`) as the data of `send()`, which then writes
   * only a descriptor: the bytes are never copied, whatever their size (docs/SHM.md §9). Returns
   * null while no slot is free (`'drain'` follows). Where the pool is not the way for such data
   * (remote broker, no addon, data at or below `shmThreshold`, disconnected) it returns an
   * ordinary `Buffer` that `send()` carries as usual. A loan not sent goes back with `unloan()`.
   */
  loan(byteLength: number): Buffer | null {
    this.session.checkOpen();
    if (!Number.isInteger(byteLength) || byteLength < 0) throw new QcopError('EINVAL', `loan size must be a non-negative integer, not ${byteLength}`);
    const b = this.session.large.loan(byteLength);
    if (b === null) {
      this.session.outbox.wait();
      return null;
    }
    if (b) return b;
    this.session.large.shm.checkData(byteLength, this.session.maxFrameBytes);
    return Buffer.alloc(byteLength);
  }

  /** Gives back a buffer from `loan()` that will not be sent; false when it is not an outstanding loan. */
  unloan(buffer: Uint8Array): boolean {
    const given = this.session.large.unloan(buffer);
    if (given) this.session.outbox.pump();
    return given;
  }

  /** Resolves once the broker routed every earlier send of this client: `{ messages, unrouted }` since the previous flush. */
  async flush(): Promise<{ messages: number; unrouted: number }> {
    this.session.checkOpen();
    const before = this.session.outbox.unconfirmed;
    const connection = this.session.outbox.connections;
    const f = await this.session.request(Kind.Flush, 0, 0, '', '', undefined, true);
    // After a reconnection the count restarted (the 'disconnected' event carried the rest): what the
    // flush confirms is then unknown, so nothing is taken off and later sends stay counted until a flush or a loss.
    if (this.session.outbox.connections === connection) this.session.outbox.unconfirmed = Math.max(0, this.session.outbox.unconfirmed - before);
    const body = decodeControl(payloadOf(f));
    return { messages: Number(body.messages ?? f.aux), unrouted: Number(body.unrouted ?? 0) };
  }

  /** Sends one message and resolves with the number of receiving processes. */
  async deliver(channel: string, message: string, data?: unknown, options?: SendOptions): Promise<number> {
    return (await this.publish(channel, message, data, options)).receivers;
  }

  /**
   * `deliver()` that also tells whether the broker stored the message (SPEC §10: a queued
   * channel; `queued` true), and can retain it (`{ retain: true }`).
   */
  async publish(channel: string, message: string, data?: unknown, options?: SendOptions): Promise<{ receivers: number; queued: boolean }> {
    this.session.checkOpen();
    this.names.check(channel, message);
    const f = await this.session.request(Kind.Send, Flag.WantCount | (options?.retain ? Flag.Retain : 0), 0, channel, message, encodeData(data), false);
    return { receivers: f.aux, queued: (f.flags & Flag.Queued) !== 0 };
  }

  /** True when any listener (exact or pattern) would receive a message on the concrete `channel`. */
  async isRegistered(channel: string): Promise<boolean> {
    this.session.checkOpen();
    this.names.checkChannel(channel, true);
    const f = await this.session.request(Kind.Query, 0, 0, channel, '', undefined, true);
    return f.aux === 1;
  }

  /**
   * Calls every process listening on `channel` and resolves with the first reply. Rejects with
   * ENOLISTENER at once when nobody listens (or every receiver left), ETIMEDOUT after `timeoutMs`
   * (default 5000), or the replier's own code.
   */
  async call(channel: string, message: string, data?: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    this.session.checkOpen();
    this.names.check(channel, message);
    const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_CALL_TIMEOUT_MS) {
      throw new QcopError('EINVAL', `timeoutMs must be between 1 and ${MAX_CALL_TIMEOUT_MS}`);
    }
    let timer: NodeJS.Timeout | undefined;
    const id = this.session.newId();
    const reply = this.session.request(Kind.Call, 0, Math.ceil(timeoutMs), channel, message, encodeData(data), false, id);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.session.forget(id);
        reject(new QcopError('ETIMEDOUT', `no reply from ${channel} within ${timeoutMs} ms`, { request: { kind: 'call', channel, message } }));
      }, timeoutMs);
    });
    try {
      const f = await Promise.race([reply, timeout]);
      return decodeData(payloadOf(f));
    } finally {
      clearTimeout(timer);
      reply.catch(() => {});
    }
  }

  /** Listens on a channel or pattern; `handler` gets every matching message once. */
  listen(channel: string, handler: (msg: ReceivedMessage) => unknown): Listener {
    this.session.checkOpen();
    this.names.checkChannel(channel, false);
    if (typeof handler !== 'function') throw new QcopError('EINVAL', 'listen() needs a handler function');
    return this.subscriptions.listen(channel, handler);
  }

  /** Reports registration events for a listener name or pattern: the current state first, then changes. */
  watch(channel: string, callback: (ev: WatchEvent) => void): Watch {
    this.session.checkOpen();
    this.names.checkChannel(channel, false);
    if (typeof callback !== 'function') throw new QcopError('EINVAL', 'watch() needs a callback function');
    return this.subscriptions.watch(channel, callback);
  }

  /**
   * Serves `impl`'s methods on `channel` as calls (method `setVolume(int)` is the message name) and
   * returns a handle with `emit(signal, ...args)` and `close()` (SPEC §12, docs/TYPED.md).
   */
  expose<T extends object, const S extends string = never>(channel: string, impl: T, options: ExposeOptions<T, S> = {}): ExposedObject<S> {
    return exposeOn<T, S>(this, channel, impl, options);
  }

  /** A typed object whose methods call what `expose` serves on `channel`, and whose signals are events (`on`). */
  proxy<T extends object, G extends SignalMap = SignalMap>(channel: string, options: ProxyOptions = {}): Proxied<T, G> {
    return proxyOf<T, G>(this, channel, options);
  }

  /**
   * The broker's figures (what `qcop stats` prints). `{ channels: true }` adds per-channel counts
   * (`channelFigures`), which the broker keeps from this request on, while asked (PROTOCOL 3.9).
   */
  async stats(options: { channels?: boolean } = {}): Promise<Record<string, unknown>> {
    this.session.checkOpen();
    const f = await this.session.request(Kind.Stats, 0, 0, '', '', options.channels ? encodeControl({ channels: true }) : undefined, true);
    return decodeControl(payloadOf(f));
  }

  /**
   * SPEC §12: every broker event on channels matching `patterns` (none: every event, connections
   * included) goes to `onEvent` until `stop()`; redone after a reconnection. Allowed to root, the
   * broker's user and `monitor` rules (else EACCES). A slow monitor loses events ('lost'), never slows others.
   */
  async monitor(patterns: string[], onEvent: (ev: MonitorEvent) => void): Promise<{ stop(): Promise<void> }> {
    this.session.checkOpen();
    await this.monitoring.start(patterns, onEvent);
    return { stop: () => this.monitoring.stop() };
  }

  /** Sends what is buffered, then closes. Pending requests reject with ECLOSED. */
  async close(): Promise<void> {
    const closed = await this.session.close(() => this.subscriptions.close(new QcopError('ECLOSED', 'client closed')));
    if (closed) this.emit('close');
  }

  /** @internal */
  answer(callId: number, kind: 'reply' | 'fail' | 'decline', value?: unknown, code?: string, text?: string): void {
    if (this.session.state !== 'open') return; // the broker forgot the call with the connection
    if (kind === 'reply') {
      this.session.outbox.enqueue({ frame: encodeFrame(Kind.Reply, 0, callId, 0, '', '', encodeData(value)) });
    } else if (kind === 'fail') {
      const c = code && isErrorCode(code) ? code : 'EINVAL';
      this.session.outbox.enqueue({ frame: encodeFrame(Kind.Reply, Flag.Failure, callId, 0, '', c, Buffer.from(text ?? '', 'utf8')) });
    } else {
      this.session.outbox.enqueue({ frame: encodeFrame(Kind.Reply, Flag.Decline, callId, 0, '', '') });
    }
  }

  /** A frame from the broker that is not an answer (the session keeps those). */
  private onFrame(f: Frame): void {
    switch (f.kind) {
      case Kind.Msg:
        return this.subscriptions.message(f);
      case Kind.Event:
        return this.subscriptions.event(f);
      case Kind.Lost:
        return this.session.emitLost(f.aux, 'the broker dropped them for this slow receiver');
      case Kind.Freed:
        // PROTOCOL 8.5: every receiver is done with that slot.
        return this.session.large.freed(f.aux);
      case Kind.Lagging:
        return this.session.large.lagging(f.aux);
      case Kind.Monitored:
        return this.monitoring.frame(f);
      default:
        this.session.reportError(new QcopError('EPROTO', `unexpected frame kind 0x${f.kind.toString(16)} from the broker`));
    }
  }

  /** Acknowledges a queued message on the connection it came on; after a reconnection the broker gives it again. */
  private acknowledger(id: number): () => void {
    const stream = this.session.connection;
    return () => {
      if (this.session.state === 'open' && this.session.connection === stream) this.session.outbox.enqueue({ frame: encodeFrame(Kind.Ack, 0, id, 0, '', '') });
    };
  }

  /** After a reconnection: listeners, watches and the monitor registered again (the session re-sends the rest). */
  private restore(): Promise<void> {
    const restored = this.subscriptions.restore();
    const monitoring = this.monitoring.restore();
    if (monitoring) restored.push(monitoring.catch((e: Error) => this.session.reportErrorIfLive(e)));
    return Promise.all(restored).then(() => undefined);
  }
}
