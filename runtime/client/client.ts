// The client: one connection to the broker, listeners and watches, requests, buffering and reconnection.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { DEFAULT_CALL_TIMEOUT_MS, Flag, HEADER_SIZE, KIND_NAMES, Kind, MAX_CALL_TIMEOUT_MS, PROTOCOL_VERSION } from '../protocol/constants.js';
import { decodeControl, decodeData, encodeControl, encodeData } from '../protocol/data.js';
import { QcopError, isErrorCode } from '../protocol/errors.js';
import { encodeFrame, payloadOf, type Frame } from '../protocol/frame.js';
import { channelProblem, decodeName, isPattern, messageProblem } from '../protocol/names.js';
import { FrameParser } from '../protocol/parser.js';
import { Pattern } from '../protocol/pattern.js';
import type { Target } from './dial.js';
import { Listener, Watch, type HandleOwner, type WatchEvent } from './handles.js';
import { ReceivedMessage, type CallAnswerer } from './message.js';
import { LargeSends, type BigSend, type Item } from './large-send.js';
import type { ShmOptions } from './shm-link.js';

/** Options a client is created with (see `connect()`). */
export interface ClientOptions extends ShmOptions {
  /** Name shown in the broker's stats. */
  name?: string;
  /** Bytes buffered before `send()` returns false (default 1 MiB); also the limit while disconnected. */
  highWaterMark?: number;
  /** Time for the handshake of each connection attempt (default 2000 ms). */
  connectTimeoutMs?: number;
  /** Reconnect after the broker goes away (default true). */
  reconnect?: boolean;
  /** Longest pause between reconnection attempts (default 2000 ms). */
  reconnectMaxDelayMs?: number;
}

interface Pending {
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

type State = 'connecting' | 'open' | 'disconnected' | 'closed';

const MAX_INBOUND_FRAME = 1 << 30;

/** A connection to a qcop broker (SPEC §3). Create it with `connect()`. */
export class Client extends EventEmitter implements HandleOwner, CallAnswerer {
  /** Limits the broker announced in its welcome (PROTOCOL 2.2). */
  limits: Record<string, unknown> = {};
  private state: State = 'connecting';
  private stream: Duplex | null = null;
  private parser: FrameParser | null = null;
  private nextRequestId = 1;
  private readonly pending = new Map<number, Pending>();
  private backlog: Array<Item<Pending>> = [];
  private backlogBytes = 0;
  /** Large messages by descriptor (PROTOCOL 8). */
  private readonly large: LargeSends<Pending>;
  private readonly listeners_ = new Map<string, Set<Listener>>();
  private readonly patterns = new Map<string, Pattern>();
  private routeCache = new Map<string, Listener[]>();
  private readonly watchesById = new Map<number, Watch>();
  private readonly watches = new Set<Watch>();
  private readonly validated = new Set<string>();
  private unconfirmed = 0;
  private needDrain = false;
  private corked: Duplex | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private welcomeWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private readonly hwm: number;
  private readonly opts: Required<Omit<ClientOptions, keyof ShmOptions>>;

  /** Use `connect()`. */
  constructor(private readonly target: Target, options: ClientOptions = {}) {
    super();
    this.opts = {
      name: options.name ?? '',
      highWaterMark: options.highWaterMark ?? 1 << 20,
      connectTimeoutMs: options.connectTimeoutMs ?? 2000,
      reconnect: options.reconnect ?? true,
      reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? 2000,
    };
    this.hwm = this.opts.highWaterMark;
    this.large = new LargeSends<Pending>({
      writable: () => this.state === 'open' && this.stream !== null,
      writeNow: (frame, pending) => this.writeNow(frame, pending),
      writeInline: (b) => this.writeNow(this.buildFrame(Kind.Send, 0, b.id, 0, b.channel, b.message, b.payload)),
      control: (kind, flags, aux, payload, onError) => this.controlRequest(kind, flags, aux, payload, onError),
      newId: () => this.newId(),
      reportError: (e) => this.reportError(e),
      drained: () => this.onDrain(),
    }, target.local === true, options, this.hwm);
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
    return this.state === 'open' && this.stream ? this.stream.writableLength + this.large.heldBytes : this.backlogBytes;
  }

  /** Slots of this client's shared-memory pool not yet released by every receiver (PROTOCOL 8). */
  get poolInUse(): { slots: number; bytes: number } {
    return this.large.shm.pool.inUse;
  }

  /** @internal Opens the first connection; rejects with ENOBROKER after the handshake timeout. */
  async open(): Promise<void> {
    const stream = await this.target.dial();
    await this.handshake(stream);
    this.state = 'open';
  }

  /**
   * Sends a message to every process listening on `channel` (SPEC §2). Returns false once the
   * client holds more than its high-water mark; `'drain'` follows. While disconnected the message
   * is buffered up to the high-water mark, and past it `send` throws ENOBUFS: nothing is dropped silently.
   * Data above `shmThreshold` go through the shared-memory pool when the broker is local
   * (PROTOCOL 8); when the pool is full the message waits in the client and `send` returns false.
   */
  send(channel: string, message: string, data?: unknown): boolean {
    this.checkOpen();
    this.checkNames(channel, message);
    if (data instanceof Uint8Array && this.large.direct(channel, message, data)) return this.afterSend();
    const payload = encodeData(data);
    const shm = this.large.shm;
    if (shm.wants(payload.length) && payload.length <= shm.capacity) {
      if (!this.queueBig({ channel, message, id: this.newId(), payload })) {
        this.unconfirmed++;
        this.needDrain = true;
        return false;
      }
    } else {
      this.write(this.buildFrame(Kind.Send, 0, this.newId(), 0, channel, message, payload));
    }
    return this.afterSend();
  }

  /** Resolves once the broker routed every earlier send of this client: `{ messages, unrouted }` since the previous flush. */
  async flush(): Promise<{ messages: number; unrouted: number }> {
    this.checkOpen();
    const before = this.unconfirmed;
    const f = await this.request(Kind.Flush, 0, 0, '', '', undefined, true);
    this.unconfirmed = Math.max(0, this.unconfirmed - before);
    const body = decodeControl(payloadOf(f));
    return { messages: Number(body.messages ?? f.aux), unrouted: Number(body.unrouted ?? 0) };
  }

  /** Sends one message and resolves with the number of receiving processes. */
  async deliver(channel: string, message: string, data?: unknown): Promise<number> {
    this.checkOpen();
    this.checkNames(channel, message);
    const f = await this.request(Kind.Send, Flag.WantCount, 0, channel, message, encodeData(data), false);
    return f.aux;
  }

  /** True when any listener (exact or pattern) would receive a message on the concrete `channel`. */
  async isRegistered(channel: string): Promise<boolean> {
    this.checkOpen();
    this.checkChannel(channel, true);
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
    this.checkNames(channel, message);
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
  listen(channel: string, handler: (msg: ReceivedMessage) => void): Listener {
    this.checkOpen();
    this.checkChannel(channel, false);
    if (typeof handler !== 'function') throw new QcopError('EINVAL', 'listen() needs a handler function');
    const l = new Listener(this, channel, handler);
    let set = this.listeners_.get(channel);
    if (set) {
      set.add(l);
      const sibling = [...set].find((x) => x !== l);
      sibling?.readiness.promise.then(() => l.readiness.settle(), (e: Error) => l.readiness.settle(e));
    } else {
      set = new Set([l]);
      this.listeners_.set(channel, set);
      if (isPattern(channel)) this.patterns.set(channel, new Pattern(channel));
      this.registerName(channel);
    }
    this.routeCache.clear();
    return l;
  }

  /** Reports registration events for a listener name or pattern: the current state first, then changes. */
  watch(channel: string, callback: (ev: WatchEvent) => void): Watch {
    this.checkOpen();
    this.checkChannel(channel, false);
    if (typeof callback !== 'function') throw new QcopError('EINVAL', 'watch() needs a callback function');
    const w = new Watch(this, channel, callback);
    this.watches.add(w);
    this.startWatch(w);
    return w;
  }

  /** The broker's figures (what `qcop stats` prints). */
  async stats(): Promise<Record<string, unknown>> {
    this.checkOpen();
    const f = await this.request(Kind.Stats, 0, 0, '', '', undefined, true);
    return decodeControl(payloadOf(f));
  }

  /** Sends what is buffered, then closes. Pending requests reject with ECLOSED. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    // Large sends still waiting for a pool slot get a moment to go out (PROTOCOL 8.5); never dropped silently.
    for (const deadline = Date.now() + 2000; this.large.holding && this.state === 'open' && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    if ((this.state as State) === 'closed') return; // closed meanwhile by another close()
    if (this.large.holding) this.reportError(new QcopError('ECLOSED', `client closed with ${this.large.heldBytes} bytes of sends still waiting for a shared-memory slot`));
    const stream = this.stream;
    this.state = 'closed';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.failPending(() => true, 'client closed');
    this.backlog = [];
    this.backlogBytes = 0;
    for (const w of this.watches) w.readiness.settle(new QcopError('ECLOSED', 'client closed'));
    this.uncork();
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

  // ---- handle owner -------------------------------------------------------------------------

  /** @internal */
  closeListener(l: Listener): void {
    const set = this.listeners_.get(l.channel);
    if (!set || !set.delete(l)) return;
    this.routeCache.clear();
    if (set.size > 0) return;
    this.listeners_.delete(l.channel);
    this.patterns.delete(l.channel);
    if (this.state === 'open' || this.state === 'disconnected') {
      this.request(Kind.Unlisten, 0, 0, l.channel, '', undefined, true).catch((e: Error) => this.reportErrorIfLive(e));
    }
  }

  /** @internal */
  closeWatch(w: Watch): void {
    if (!this.watches.delete(w)) return;
    this.watchesById.delete(w.id);
    if (w.id && this.state === 'open') {
      this.request(Kind.Unwatch, 0, w.id, w.channel, '', undefined, true).catch((e: Error) => this.reportErrorIfLive(e));
    }
  }

  /** @internal Errors without a promise go to the handle, else the client, else a process warning: never silent. */
  reportError(err: Error, handle?: EventEmitter): void {
    if (handle && handle.listenerCount('error') > 0) handle.emit('error', err);
    else if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err.message, { code: (err as QcopError).code ?? 'QCOP' });
  }

  /** @internal */
  answer(callId: number, kind: 'reply' | 'fail' | 'decline', value?: unknown, code?: string, text?: string): void {
    if (this.state !== 'open') return; // the broker forgot the call with the connection
    if (kind === 'reply') {
      this.write(encodeFrame(Kind.Reply, 0, callId, 0, '', '', encodeData(value)));
    } else if (kind === 'fail') {
      const c = code && isErrorCode(code) ? code : 'EINVAL';
      this.write(encodeFrame(Kind.Reply, Flag.Failure, callId, 0, '', c, Buffer.from(text ?? '', 'utf8')));
    } else {
      this.write(encodeFrame(Kind.Reply, Flag.Decline, callId, 0, '', ''));
    }
  }

  // ---- internals ----------------------------------------------------------------------------

  private reportErrorIfLive(e: Error): void {
    if (this.state !== 'closed' && (e as QcopError).code !== 'ECLOSED') this.reportError(e);
  }

  private checkOpen(): void {
    if (this.state === 'closed') throw new QcopError('ECLOSED', 'the client is closed');
  }

  private checkChannel(channel: string, concrete: boolean): void {
    if (!this.validated.has(channel)) {
      const problem = channelProblem(channel);
      if (problem) throw new QcopError('EINVAL', problem);
    }
    if (concrete && isPattern(channel)) throw new QcopError('EINVAL', `'${channel}' is a pattern; a message goes to a concrete channel`);
    if (this.validated.size > 4096) this.validated.clear();
    this.validated.add(channel);
  }

  private checkNames(channel: string, message: string): void {
    this.checkChannel(channel, true);
    if (!this.validated.has('\0m' + message)) {
      const problem = messageProblem(message);
      if (problem) throw new QcopError('EINVAL', problem);
      this.validated.add('\0m' + message);
    }
  }

  private buildFrame(kind: Kind, flags: number, id: number, aux: number, channel: string, message: string, payload?: Uint8Array): Buffer {
    const max = Number(this.limits.maxFrameBytes ?? 1 << 20);
    const size = HEADER_SIZE + Buffer.byteLength(channel) + Buffer.byteLength(message) + (payload?.length ?? 0);
    if (size > max) {
      const shm = this.large.shm;
      const why = shm.whyNot();
      const tail = kind !== Kind.Send || flags !== 0
        ? 'only send() carries data through shared memory'
        : why ? `larger data travel through shared memory, unavailable here: ${why}` : `it is larger than a quarter of this client's pool (maxPoolBytes ${shm.capacity * 4})`;
      throw new QcopError('EMSGSIZE', `a ${size}-byte frame exceeds the broker's limit of ${max} bytes; ${tail} (docs/SHM.md)`);
    }
    return encodeFrame(kind, flags, id, aux, channel, message, payload);
  }

  private newId(): number {
    const id = this.nextRequestId;
    this.nextRequestId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  private request(kind: Kind, flags: number, aux: number, channel: string, message: string, payload: Uint8Array | undefined, idempotent: boolean, id = this.newId()): Promise<Frame> {
    const frame = this.buildFrame(kind, flags, id, aux, channel, message, payload);
    return new Promise<Frame>((resolve, reject) => {
      const p: Pending = { kind, channel, resolve, reject, idempotent, frame, inFlight: false };
      this.pending.set(id, p);
      try {
        this.write(frame, p);
      } catch (err) {
        this.pending.delete(id);
        reject(err);
      }
    });
  }

  private write(frame: Buffer, pending?: Pending): void {
    if (this.state === 'open' && this.stream && this.large.holding) {
      // PROTOCOL 8.5: a large send waits for a slot; what follows it waits too, so order holds.
      this.large.hold({ frame, pending });
      return;
    }
    this.writeNow(frame, pending);
  }

  /** Writes to the stream now (bypassing held sends), or to the backlog while disconnected. */
  private writeNow(frame: Buffer, pending?: Pending): void {
    if (this.state === 'open' && this.stream) {
      if (pending) pending.inFlight = true;
      if (this.corked !== this.stream) {
        this.uncork();
        this.corked = this.stream;
        this.stream.cork();
        process.nextTick(() => this.uncork());
      }
      this.stream.write(frame);
      return;
    }
    if (this.state === 'closed') throw new QcopError('ECLOSED', 'the client is closed');
    // Disconnected: buffer up to the high-water mark, refuse the rest (SPEC §2 reconnect).
    if (this.backlogBytes + frame.length > this.hwm) {
      throw new QcopError('ENOBUFS', `disconnected from ${this.where} and ${this.backlogBytes} bytes are already buffered (high-water mark ${this.hwm})`);
    }
    this.backlog.push({ frame, pending });
    this.backlogBytes += frame.length;
  }

  // ---- large messages by descriptor (PROTOCOL 8) ----------------------------------------------

  /** Sends large data through a pool slot now, or holds it (in order) until slots free; false when held. */
  private queueBig(big: BigSend): boolean {
    if (this.state !== 'open' || !this.stream) {
      if (this.state === 'closed') throw new QcopError('ECLOSED', 'the client is closed');
      if (this.backlogBytes + big.payload.length > this.hwm) {
        throw new QcopError('ENOBUFS', `disconnected from ${this.where} and ${this.backlogBytes} bytes are already buffered (high-water mark ${this.hwm})`);
      }
      this.backlog.push({ big });
      this.backlogBytes += big.payload.length;
      return true;
    }
    return this.large.submit(big);
  }

  private afterSend(): boolean {
    this.unconfirmed++;
    if (this.bufferedBytes >= this.hwm || this.large.shm.pool.pressured) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** Writes a request now (ahead of held sends) whose answer matters only when it is an error. */
  private controlRequest(kind: Kind, flags: number, aux: number, payload: Uint8Array | undefined, onError: (e: Error) => void): void {
    const id = this.newId();
    const frame = encodeFrame(kind, flags, id, aux, '', '', payload);
    const p: Pending = {
      kind, channel: '', idempotent: false, frame, inFlight: false, resolve: () => {},
      reject: (e) => { if ((e as QcopError).code !== 'ECLOSED') onError(e); },
    };
    this.pending.set(id, p);
    this.writeNow(frame, p);
  }

  private uncork(): void {
    const s = this.corked;
    this.corked = null;
    if (s && !s.destroyed) s.uncork();
  }

  private registerName(name: string): void {
    this.request(Kind.Listen, 0, 0, name, '', undefined, true).then(
      () => {
        for (const l of this.listeners_.get(name) ?? []) l.readiness.settle();
      },
      (err: Error) => {
        if (this.state === 'closed' || (err as QcopError).code === 'ECLOSED') return;
        const set = this.listeners_.get(name);
        if (!set) return;
        // The broker refused the name: those listeners will never receive; tell them.
        this.listeners_.delete(name);
        this.patterns.delete(name);
        this.routeCache.clear();
        for (const l of set) {
          l.readiness.settle(err);
          this.reportError(err, l);
        }
      },
    );
  }

  private startWatch(w: Watch): void {
    const id = this.newId();
    w.id = id;
    this.watchesById.set(id, w);
    this.request(Kind.Watch, 0, 0, w.channel, '', undefined, false, id).then(
      () => {
        if (w.resync) {
          // After a reconnection report only what changed meanwhile (SPEC §2).
          const now = w.resync;
          w.resync = null;
          for (const name of now) if (!w.known.has(name)) this.watchEvent(w, name, true, false);
          for (const name of [...w.known]) if (!now.has(name)) this.watchEvent(w, name, false, false);
        }
        w.established = true;
        w.readiness.settle();
      },
      (err: Error) => {
        this.watchesById.delete(id);
        if (this.state === 'closed' || (err as QcopError).code === 'ECLOSED') return;
        this.watches.delete(w);
        w.readiness.settle(err);
        this.reportError(err, w);
      },
    );
  }

  private watchEvent(w: Watch, name: string, registered: boolean, initial: boolean): void {
    if (registered) w.known.add(name);
    else w.known.delete(name);
    if (w.closed) return;
    const ev: WatchEvent = { type: registered ? 'registered' : 'unregistered', channel: name };
    if (initial) ev.initial = true;
    w.callback(ev);
  }

  private async handshake(stream: Duplex): Promise<void> {
    this.stream = stream;
    this.parser = new FrameParser(MAX_INBOUND_FRAME);
    const parser = this.parser;
    stream.on('data', (chunk: Buffer) => {
      if (this.stream !== stream) return;
      const err = parser.push(chunk, (f) => this.onFrame(f));
      if (err) {
        this.reportError(new QcopError(err.code, `from broker: ${err.message}`));
        stream.destroy();
      }
    });
    stream.on('error', () => {});
    stream.on('close', () => this.onStreamClose(stream));
    stream.on('drain', () => this.onDrain());
    const welcome = new Promise<void>((resolve, reject) => (this.welcomeWaiter = { resolve, reject }));
    stream.write(encodeFrame(Kind.Hello, 0, process.pid, PROTOCOL_VERSION, '', this.opts.name, encodeControl({ features: this.large.shm.helloFeatures() })));
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

  private onFrame(f: Frame): void {
    switch (f.kind) {
      case Kind.Msg:
        return this.onMsg(f);
      case Kind.Result:
      case Kind.Error:
        return this.onAnswer(f);
      case Kind.Event:
        return this.onEvent(f);
      case Kind.Lost:
        return this.onLost(f.aux);
      case Kind.Freed:
        // PROTOCOL 8.5: every receiver is done with that slot.
        return this.large.freed(f.aux);
      case Kind.Lagging:
        return this.large.lagging(f.aux);
      case Kind.Welcome:
        this.limits = decodeControl(payloadOf(f));
        this.large.shm.welcome(this.limits);
        this.welcomeWaiter?.resolve();
        return;
      default:
        this.reportError(new QcopError('EPROTO', `unexpected frame kind 0x${f.kind.toString(16)} from the broker`));
    }
  }

  private lookup(channel: string): Listener[] {
    let out = this.routeCache.get(channel);
    if (out) return out;
    out = [...(this.listeners_.get(channel) ?? [])];
    for (const [name, pattern] of this.patterns) {
      if (pattern.matches(channel)) out.push(...this.listeners_.get(name)!);
    }
    if (this.routeCache.size > 4096) this.routeCache = new Map();
    this.routeCache.set(channel, out);
    return out;
  }

  private onMsg(f: Frame): void {
    const channel = decodeName(f.raw, HEADER_SIZE, f.channelEnd) ?? '';
    const message = decodeName(f.raw, f.channelEnd, f.messageEnd) ?? '';
    const isCall = (f.flags & Flag.Call) !== 0;
    const targets = this.lookup(channel);
    if (f.flags & Flag.Shm) return this.large.receive(f, channel, message, targets);
    const msg = new ReceivedMessage(channel, message, payloadOf(f), isCall ? { id: f.id, via: this } : undefined);
    if (targets.length === 0) {
      // A listener closed while the message was on its way: a call must not wait for us.
      if (isCall) msg.decline!();
      return;
    }
    for (const l of targets) if (!l.closed) l.handler(msg);
  }

  private onAnswer(f: Frame): void {
    const p = this.pending.get(f.id);
    if (f.kind === Kind.Error) {
      const code = decodeName(f.raw, f.channelEnd, f.messageEnd) || 'EPROTO';
      const text = payloadOf(f).toString('utf8');
      const channel = decodeName(f.raw, HEADER_SIZE, f.channelEnd) || p?.channel || undefined;
      const kind = KIND_NAMES[p?.kind ?? f.aux] ?? 'unknown';
      const err = new QcopError(code, text, { request: { kind, ...(channel ? { channel } : {}) } });
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

  private onEvent(f: Frame): void {
    const w = this.watchesById.get(f.id);
    if (!w) return;
    const name = decodeName(f.raw, HEADER_SIZE, f.channelEnd) ?? '';
    const registered = (f.flags & Flag.Registered) !== 0;
    if (w.resync && f.flags & Flag.Initial) {
      w.resync.add(name);
      return;
    }
    this.watchEvent(w, name, registered, (f.flags & Flag.Initial) !== 0);
  }

  private onLost(count: number): void {
    const info = { count };
    if (this.listenerCount('lost') > 0) this.emit('lost', info);
    else process.emitWarning(`qcop: the broker dropped ${count} message(s) for this slow receiver`, { code: 'QCOP_LOST' });
  }

  private onDrain(): void {
    if (this.needDrain && !this.large.holding && this.bufferedBytes < this.hwm && !this.large.shm.pool.pressured) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  private failPending(which: (p: Pending) => boolean, why: string): void {
    for (const [id, p] of [...this.pending]) {
      if (!which(p)) continue;
      this.pending.delete(id);
      p.onSettle?.();
      p.reject(new QcopError('ECLOSED', why, { request: { kind: KIND_NAMES[p.kind] ?? 'unknown', channel: p.channel || undefined } }));
    }
  }

  private onStreamClose(stream: Duplex): void {
    if (this.stream !== stream) return;
    this.stream = null;
    if (this.corked === stream) this.corked = null;
    if (this.state === 'closed' || this.state === 'connecting') return;
    this.state = 'disconnected';
    // Held sends were never written: they go first when the connection is back (PROTOCOL 8.7).
    const heldBytes = this.large.heldBytes;
    this.backlog = [...this.large.disconnected(), ...this.backlog];
    this.backlogBytes += heldBytes;
    // Calls and counted sends may or may not have reached the broker: never guess, reject them.
    this.failPending((p) => p.inFlight && !p.idempotent, `connection to ${this.where} lost`);
    const unconfirmed = this.unconfirmed;
    this.unconfirmed = 0;
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

  private scheduleReconnect(): void {
    const delay = Math.min(this.opts.reconnectMaxDelayMs, 50 * 2 ** Math.min(this.attempt, 10));
    this.attempt++;
    this.reconnectTimer = setTimeout(() => void this.reconnect(), delay * (0.75 + Math.random() * 0.5));
  }

  private async reconnect(): Promise<void> {
    this.reconnectTimer = null;
    if (this.state !== 'disconnected') return;
    try {
      const stream = await this.target.dial();
      if (this.state !== 'disconnected') {
        stream.destroy();
        return;
      }
      await this.handshake(stream);
    } catch {
      if (this.state === 'disconnected') this.scheduleReconnect();
      return;
    }
    if (this.state !== 'disconnected') return;
    this.attempt = 0;
    this.state = 'open';
    this.restore();
    this.emit('reconnected');
    this.onDrain();
  }

  /** Re-registers listeners and watches, re-sends idempotent requests, then the backlog, in order. */
  private restore(): void {
    const backlog = this.backlog;
    this.backlog = [];
    this.backlogBytes = 0;
    const resend: Pending[] = [];
    // Listen and watch requests are redone from the tables below; forget their old entries.
    for (const [id, p] of [...this.pending]) {
      if (p.kind === Kind.Listen || p.kind === Kind.Watch || p.kind === Kind.Unwatch) this.pending.delete(id);
      else if (p.inFlight) resend.push(p);
    }
    for (const name of this.listeners_.keys()) this.registerName(name);
    for (const w of this.watches) {
      this.watchesById.delete(w.id);
      w.resync = w.established ? new Set() : null;
      this.startWatch(w);
    }
    for (const p of resend) this.write(p.frame, p);
    for (const { frame, pending, big } of backlog) {
      if (big) {
        if (!this.queueBig(big)) this.needDrain = true;
        continue;
      }
      if (pending && !this.pending.has(frame!.readUInt32LE(8))) continue;
      this.write(frame!, pending);
    }
  }
}
