// The client's API: send, flush, deliver, isRegistered, call, listen, watch; dispatch of what the broker sends.
import { DEFAULT_CALL_TIMEOUT_MS, Flag, Kind, MAX_CALL_TIMEOUT_MS } from '../protocol/constants.js';
import { decodeData, encodeData } from '../protocol/data.js';
import { headSize } from '../protocol/cbor.js';
import { decodeControl, encodeControl } from '../protocol/control.js';
import { QcopError, isErrorCode } from '../protocol/errors.js';
import { encodeFrame, payloadOf, type Frame } from '../protocol/frame.js';
import type { Listener, Watch, WatchEvent } from './handles.js';
import { inboundLimit } from './dial.js';
import { SendNames } from './send-names.js';
import type { CallAnswerer, ReceivedMessage } from './message.js';
import { expose as exposeOn, proxy as proxyOf, type ExposedObject, type ExposeOptions, type Proxied, type ProxyOptions, type SignalMap } from './typed.js';
import { Monitoring, type MonitorEvent } from './monitor.js';
import type { Item } from './outbox.js';
import { ClientSession, type Pending, type State } from './session.js';
import { Subscriptions } from './subscriptions.js';

export type { ClientOptions } from './options.js';

/** Options of `send`, `deliver` and `publish` (SPEC §10). */
export interface SendOptions {
  /** Keep this message as the channel's retained value (no data: clear it). */
  retain?: boolean;
}

/** A connection to a qcop broker (SPEC §3). Create it with `connect()`. */
export class Client extends ClientSession implements CallAnswerer {
  /** Listeners and watches, and what the broker sends them. */
  private readonly subscriptions = new Subscriptions({
    request: (...args) => this.request(...args),
    newId: () => this.newId(),
    reportError: (err, handle) => this.reportError(err, handle),
    reportErrorIfLive: (err) => this.reportErrorIfLive(err),
    state: () => this.state,
    acknowledger: (id) => this.acknowledger(id),
    receiveLarge: (f, channel, message, targets) => this.large.receive(f, channel, message, targets),
    answerer: this,
  });
  private readonly names = new SendNames();
  private readonly monitoring = new Monitoring({ monitorRequest: (p) => this.request(Kind.Monitor, 0, 0, '', '', p, true) });

  /**
   * Sends a message to every process listening on `channel` (SPEC §2). Returns false once the
   * client holds more than its high-water mark; `'drain'` follows. While disconnected the message
   * is buffered up to the high-water mark, and past it `send` throws ENOBUFS: nothing is dropped silently.
   * Data above `shmThreshold` go through the shared-memory pool when the broker is local
   * (PROTOCOL 8); when the pool is full the message waits in the client and `send` returns false.
   */
  send(channel: string, message: string, data?: unknown, options?: SendOptions): boolean {
    this.checkOpen();
    this.names.check(channel, message);
    if (options?.retain) {
      // SPEC §10: a retained value travels inline (the broker keeps its bytes).
      const frame = this.buildFrame(Kind.Send, Flag.Retain, this.newId(), 0, this.names.channelBytes(channel), this.names.messageBytes(message), encodeData(data));
      return this.outbox.accepted(this.outbox.enqueue({ frame }));
    }
    if (data instanceof Uint8Array) {
      // Before a loan is taken back, so that a refused send leaves it to the caller.
      this.outbox.checkRoom(0);
      const loaned = this.large.shm.pool.outstanding > 0 ? this.large.shm.pool.claim(data) : undefined;
      if (loaned?.slot) return this.outbox.accepted(this.outbox.enqueue({ big: this.large.loanSend(channel, message, this.newId(), loaned.slot, data.length) }));
      const bytes = loaned ? loaned.copy : data;
      if (this.large.direct(channel, message, bytes)) return this.outbox.accepted(true);
      if (!this.large.shm.wants(headSize(bytes.length) + bytes.length)) {
        // The common small case: CBOR head and bytes go straight into the frame, no encoder, one copy.
        const frame = this.buildFrame(Kind.Send, 0, this.newId(), 0, this.names.channelBytes(channel), this.names.messageBytes(message), bytes, true);
        return this.outbox.accepted(this.outbox.enqueue({ frame }));
      }
      data = bytes;
    }
    const payload = encodeData(data);
    const shm = this.large.shm;
    if (shm.wants(payload.length) && payload.length <= shm.capacity) {
      return this.outbox.accepted(this.outbox.enqueue({ big: { channel, message, id: this.newId(), payload } }));
    }
    const frame = this.buildFrame(Kind.Send, 0, this.newId(), 0, this.names.channelBytes(channel), this.names.messageBytes(message), payload);
    return this.outbox.accepted(this.outbox.enqueue({ frame }));
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
    this.checkOpen();
    if (!Number.isInteger(byteLength) || byteLength < 0) throw new QcopError('EINVAL', `loan size must be a non-negative integer, not ${byteLength}`);
    const b = this.large.loan(byteLength);
    if (b === null) {
      this.outbox.wait();
      return null;
    }
    if (b) return b;
    this.large.shm.checkData(byteLength, this.maxFrameBytes);
    return Buffer.alloc(byteLength);
  }

  /** Gives back a buffer from `loan()` that will not be sent; false when it is not an outstanding loan. */
  unloan(buffer: Uint8Array): boolean {
    const given = this.large.shm.pool.unloan(buffer);
    if (given) this.outbox.pump();
    return given;
  }

  /** Resolves once the broker routed every earlier send of this client: `{ messages, unrouted }` since the previous flush. */
  async flush(): Promise<{ messages: number; unrouted: number }> {
    this.checkOpen();
    const before = this.outbox.unconfirmed;
    const connection = this.outbox.connections;
    const f = await this.request(Kind.Flush, 0, 0, '', '', undefined, true);
    // After a reconnection the count restarted (the 'disconnected' event carried the rest): what the
    // flush confirms is then unknown, so nothing is taken off and later sends stay counted until a flush or a loss.
    if (this.outbox.connections === connection) this.outbox.unconfirmed = Math.max(0, this.outbox.unconfirmed - before);
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
    this.checkOpen();
    this.names.check(channel, message);
    const f = await this.request(Kind.Send, Flag.WantCount | (options?.retain ? Flag.Retain : 0), 0, channel, message, encodeData(data), false);
    return { receivers: f.aux, queued: (f.flags & Flag.Queued) !== 0 };
  }

  /** True when any listener (exact or pattern) would receive a message on the concrete `channel`. */
  async isRegistered(channel: string): Promise<boolean> {
    this.checkOpen();
    this.names.checkChannel(channel, true);
    const f = await this.request(Kind.Query, 0, 0, channel, '', undefined, true);
    return f.aux === 1;
  }

  /**
   * Calls every process listening on `channel` and resolves with the first reply. Rejects with
   * ENOLISTENER at once when nobody listens (or every receiver left), ETIMEDOUT after `timeoutMs`
   * (default 5000), or the replier's own code.
   */
  async call(channel: string, message: string, data?: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    this.checkOpen();
    this.names.check(channel, message);
    const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_CALL_TIMEOUT_MS) {
      throw new QcopError('EINVAL', `timeoutMs must be between 1 and ${MAX_CALL_TIMEOUT_MS}`);
    }
    let timer: NodeJS.Timeout | undefined;
    const id = this.newId();
    const reply = this.request(Kind.Call, 0, Math.ceil(timeoutMs), channel, message, encodeData(data), false, id);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        p?.onSettle?.();
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
    this.checkOpen();
    this.names.checkChannel(channel, false);
    if (typeof handler !== 'function') throw new QcopError('EINVAL', 'listen() needs a handler function');
    return this.subscriptions.listen(channel, handler);
  }

  /** Reports registration events for a listener name or pattern: the current state first, then changes. */
  watch(channel: string, callback: (ev: WatchEvent) => void): Watch {
    this.checkOpen();
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
    this.checkOpen();
    const f = await this.request(Kind.Stats, 0, 0, '', '', options.channels ? encodeControl({ channels: true }) : undefined, true);
    return decodeControl(payloadOf(f));
  }

  /**
   * SPEC §12: every broker event on channels matching `patterns` (none: every event, connections
   * included) goes to `onEvent` until `stop()`; redone after a reconnection. Allowed to root, the
   * broker's user and `monitor` rules (else EACCES). A slow monitor loses events ('lost'), never slows others.
   */
  async monitor(patterns: string[], onEvent: (ev: MonitorEvent) => void): Promise<{ stop(): Promise<void> }> {
    this.checkOpen();
    await this.monitoring.start(patterns, onEvent);
    return { stop: () => this.monitoring.stop() };
  }

  /** Sends what is buffered, then closes. Pending requests reject with ECLOSED. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    // Large sends still waiting for a pool slot get a moment to go out (PROTOCOL 8.5); never dropped silently.
    for (const deadline = Date.now() + 2000; this.outbox.holding && this.state === 'open' && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    if ((this.state as State) === 'closed') return; // closed meanwhile by another close()
    if (this.outbox.holding) this.reportError(new QcopError('ECLOSED', `client closed with ${this.outbox.heldBytes} bytes of sends still waiting for a shared-memory slot`));
    const stream = this.stream;
    this.state = 'closed';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopWatching();
    this.failPending(() => true, 'client closed');
    this.subscriptions.close(new QcopError('ECLOSED', 'client closed'));
    this.outbox.close();
    if (stream && !stream.destroyed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          stream.destroy();
          resolve();
        }, 1000);
        timer.unref?.();
        stream.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        stream.end();
      });
    }
    this.large.close();
    this.emit('close');
  }

  /** @internal */
  answer(callId: number, kind: 'reply' | 'fail' | 'decline', value?: unknown, code?: string, text?: string): void {
    if (this.state !== 'open') return; // the broker forgot the call with the connection
    if (kind === 'reply') {
      this.outbox.enqueue({ frame: encodeFrame(Kind.Reply, 0, callId, 0, '', '', encodeData(value)) });
    } else if (kind === 'fail') {
      const c = code && isErrorCode(code) ? code : 'EINVAL';
      this.outbox.enqueue({ frame: encodeFrame(Kind.Reply, Flag.Failure, callId, 0, '', c, Buffer.from(text ?? '', 'utf8')) });
    } else {
      this.outbox.enqueue({ frame: encodeFrame(Kind.Reply, Flag.Decline, callId, 0, '', '') });
    }
  }

  protected override onFrame(f: Frame): void {
    switch (f.kind) {
      case Kind.Msg:
        return this.subscriptions.message(f);
      case Kind.Result:
      case Kind.Error:
        return this.onAnswer(f);
      case Kind.Event:
        return this.subscriptions.event(f);
      case Kind.Lost:
        return this.emitLost(f.aux, 'the broker dropped them for this slow receiver');
      case Kind.Freed:
        // PROTOCOL 8.5: every receiver is done with that slot.
        return this.large.freed(f.aux);
      case Kind.Lagging:
        return this.large.lagging(f.aux);
      case Kind.Monitored:
        return this.monitoring.frame(f);
      case Kind.Welcome:
        this.limits = decodeControl(payloadOf(f));
        this.parser?.setLimit(inboundLimit(this.limits.maxFrameBytes, this.opts.maxInboundFrameBytes));
        this.large.shm.welcome(this.limits);
        this.welcomeWaiter?.resolve();
        return;
      default:
        this.reportError(new QcopError('EPROTO', `unexpected frame kind 0x${f.kind.toString(16)} from the broker`));
    }
  }

  /** Acknowledges a queued message on the connection it came on; after a reconnection the broker gives it again. */
  private acknowledger(id: number): () => void {
    const stream = this.stream;
    return () => {
      if (this.state === 'open' && this.stream === stream) this.outbox.enqueue({ frame: encodeFrame(Kind.Ack, 0, id, 0, '', '') });
    };
  }

  /**
   * Re-registers listeners and watches, re-sends idempotent requests, then what waited in the
   * Outbox, in order; resolves once the broker has answered every re-registration (then
   * 'reconnected' is emitted).
   */
  protected override restore(backlog: Array<Item<Pending>>): Promise<void> {
    const resend: Pending[] = [];
    // Listen, watch and monitor requests are redone from the tables below; forget their old entries.
    for (const [id, p] of [...this.pending]) {
      if (p.kind === Kind.Listen || p.kind === Kind.Watch || p.kind === Kind.Unwatch || p.kind === Kind.Monitor) this.pending.delete(id);
      else if (p.inFlight) resend.push(p);
    }
    const restored = this.subscriptions.restore();
    const monitoring = this.monitoring.restore();
    if (monitoring) restored.push(monitoring.catch((e: Error) => this.reportErrorIfLive(e)));
    for (const p of resend) this.outbox.enqueue({ frame: p.frame, pending: p }, false);
    for (const item of backlog) this.outbox.enqueue(item, false);
    return Promise.all(restored).then(() => undefined);
  }
}
