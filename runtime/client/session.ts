// The client's connection: requests (requests.ts), the handshake, reconnection; its writes go through the Outbox.
// The client owns one (runtime/client/client.ts) and tells it what to do with the frames that are not answers.
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { HEADER_SIZE, Kind, PROTOCOL_VERSION } from '../protocol/constants.js';
import { headSize } from '../protocol/cbor.js';
import { decodeControl, encodeControl } from '../protocol/control.js';
import { QcopError } from '../protocol/errors.js';
import { encodeFrame, nameLength, payloadOf, type Frame } from '../protocol/frame.js';
import { FrameParser } from '../protocol/parser.js';
import { INBOUND_BEFORE_WELCOME, inboundLimit, type Target } from './dial.js';
import { LargeSends } from './large-send.js';
import { sessionOptions, type ClientOptions, type SessionOptions } from './options.js';
import { Outbox } from './outbox.js';
import { Requests, type Pending } from './requests.js';
import { watchSocket } from './socket-watch.js';

export type State = 'connecting' | 'open' | 'disconnected' | 'closed';

/** What the session needs from its client: its events, and what to do with frames that are not answers. */
export interface SessionHost {
  /** The client's events ('drain', 'lost', 'disconnected', 'reconnected', 'close', 'error'). */
  readonly events: Pick<EventEmitter, 'emit' | 'listenerCount'>;
  /** A frame from the broker other than answers and the welcome: messages, events, notices. */
  frame(f: Frame): void;
  /** After a reconnection: registers again what the client holds; settles once the broker answered it all. */
  restore(): Promise<void>;
}

/** The connection half of a client: requests, buffering while disconnected, the handshake and reconnection. */
export class Session {
  /** Limits the broker announced in its welcome (PROTOCOL 2.2). */
  limits: Record<string, unknown> = {};
  private stateNow: State = 'connecting';
  private stream: Duplex | null = null;
  private parser: FrameParser | null = null;
  private readonly requests = new Requests();
  /** Every unsent byte, in order, and the backpressure state. */
  readonly outbox: Outbox<Pending>;
  /** Large messages by descriptor (PROTOCOL 8). */
  readonly large: LargeSends;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Stops watching the socket's folder (set while disconnected from a Unix socket). */
  private unwatchSocket: (() => void) | null = null;
  private dialing = false;
  private attempt = 0;
  private welcomeWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private readonly opts: SessionOptions;
  private incomingHeld = false;

  constructor(private readonly target: Target, options: ClientOptions, private readonly host: SessionHost) {
    this.opts = sessionOptions(options);
    this.outbox = new Outbox<Pending>({
      place: (big) => this.large.place(big),
      unslot: (big) => this.large.unslot(big),
      live: (p) => this.requests.waiting(p),
      written: (p) => (p.inFlight = true),
      pressured: () => this.large.shm.pool.pressured,
      drain: () => this.host.events.emit('drain'),
      reportError: (e) => this.reportError(e),
    }, this.opts.highWaterMark);
    this.large = new LargeSends({
      writable: () => this.outbox.writable,
      holding: () => this.outbox.holding,
      writeNow: (frame) => this.outbox.writeNow(frame),
      writeInline: (b) => this.outbox.writeNow(this.buildFrame(Kind.Send, 0, b.id, 0, b.channel, b.message, b.payload, b.bytes === true)),
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

  get state(): State {
    return this.stateNow;
  }

  /** The connection now: what a message came on, to tell it from a later one. */
  get connection(): Duplex | null {
    return this.stream;
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
    this.stateNow = 'open';
    this.outbox.attach(stream);
    this.applyHold(stream);
  }

  /** @internal Errors without a promise go to the handle, else the client, else a process warning: never silent. */
  reportError(err: Error, handle?: EventEmitter): void {
    if (handle && handle.listenerCount('error') > 0) handle.emit('error', err);
    else if (this.host.events.listenerCount('error') > 0) this.host.events.emit('error', err);
    else process.emitWarning(err.message, { code: (err as QcopError).code ?? 'QCOP' });
  }

  /** `count` messages were lost for this receiver: a 'lost' event `{ count }`, else a process warning (never silent). */
  emitLost(count: number, why: string): void {
    if (!this.host.events.emit('lost', { count })) process.emitWarning(`qcop: ${count} message(s) lost: ${why}`, { code: 'QCOP_LOST' });
  }

  reportErrorIfLive(e: Error): void {
    if (this.state !== 'closed' && (e as QcopError).code !== 'ECLOSED') this.reportError(e);
  }

  checkOpen(): void {
    if (this.state === 'closed') throw new QcopError('ECLOSED', 'the client is closed');
  }

  buildFrame(kind: Kind, flags: number, id: number, aux: number, channel: string | Uint8Array, message: string | Uint8Array, payload?: Uint8Array, asByteString = false): Buffer {
    const data = payload ? payload.length + (asByteString ? headSize(payload.length) : 0) : 0;
    this.large.shm.checkFrame(kind !== Kind.Send || flags !== 0, HEADER_SIZE + nameLength(channel) + nameLength(message) + data, this.maxFrameBytes);
    return encodeFrame(kind, flags, id, aux, channel, message, payload, asByteString);
  }

  /** The broker's frame limit (from the welcome). */
  get maxFrameBytes(): number {
    return Number(this.limits.maxFrameBytes ?? 1 << 20);
  }

  newId(): number {
    return this.requests.newId();
  }

  request(kind: Kind, flags: number, aux: number, channel: string, message: string, payload: Uint8Array | undefined, idempotent: boolean, id = this.newId()): Promise<Frame> {
    const frame = this.buildFrame(kind, flags, id, aux, channel, message, payload);
    return new Promise<Frame>((resolve, reject) => {
      const p: Pending = { kind, channel, resolve, reject, idempotent, frame, inFlight: false };
      this.requests.add(id, p);
      try {
        this.outbox.enqueue({ frame, pending: p });
      } catch (err) {
        this.requests.forget(id);
        reject(err);
      }
    });
  }

  /** Writes a request now (ahead of held sends) whose answer matters only when it is an error. */
  controlRequest(kind: Kind, flags: number, aux: number, payload: Uint8Array | undefined, onError: (e: Error) => void): void {
    const id = this.newId();
    const frame = encodeFrame(kind, flags, id, aux, '', '', payload);
    const p: Pending = {
      kind, channel: '', idempotent: false, frame, inFlight: false, resolve: () => {},
      reject: (e) => { if ((e as QcopError).code !== 'ECLOSED') onError(e); },
    };
    this.requests.add(id, p);
    this.outbox.writeNow(frame, p);
  }

  private async handshake(stream: Duplex): Promise<void> {
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

  private onAnswer(f: Frame): void {
    const err = this.requests.answer(f);
    if (!err) return;
    if (this.welcomeWaiter) this.welcomeWaiter.reject(err);
    else this.reportError(err);
  }

  private onStreamClose(stream: Duplex): void {
    if (this.stream !== stream) return;
    this.stream = null;
    const unconfirmed = this.outbox.detach(stream);
    // Closed before the welcome: say so now rather than when the handshake timer runs out.
    this.welcomeWaiter?.reject(new QcopError('ENOBROKER', `the connection to ${this.where} closed during the handshake`));
    if (this.state === 'closed' || this.state === 'connecting') return;
    this.stateNow = 'disconnected';
    this.large.disconnected();
    // Calls and counted sends may or may not have reached the broker: never guess, reject them.
    this.requests.fail((p) => p.inFlight && !p.idempotent, `connection to ${this.where} lost`);
    if (!this.opts.reconnect) {
      this.requests.fail(() => true, `connection to ${this.where} lost`);
      this.stateNow = 'closed';
      this.host.events.emit('disconnected', { unconfirmed });
      this.host.events.emit('close');
      return;
    }
    this.host.events.emit('disconnected', { unconfirmed });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
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
  private stopWatching(): void {
    this.unwatchSocket?.();
    this.unwatchSocket = null;
  }

  private async reconnect(): Promise<void> {
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
    this.stateNow = 'open';
    const stream = this.stream!;
    const backlog = this.outbox.attach(stream);
    this.applyHold(stream);
    // Requests the client redoes itself (listen, watch, monitor) go; others written before the loss are sent again.
    const resend = this.requests.takeResend();
    // Registrations first, then those requests, then what waited in the Outbox, in order.
    const restored = this.host.restore();
    for (const p of resend) this.outbox.enqueue({ frame: p.frame, pending: p }, false);
    for (const item of backlog) this.outbox.enqueue(item, false);
    // 'reconnected' means restored: listeners and watches are registered again at the broker.
    void restored.then(() => {
      if (this.state === 'open' && this.stream === stream) this.host.events.emit('reconnected');
    });
    this.outbox.checkDrain();
  }

  /** Answers and the welcome are the session's; every other frame goes to the client. */
  private onFrame(f: Frame): void {
    switch (f.kind) {
      case Kind.Result:
      case Kind.Error:
        return this.onAnswer(f);
      case Kind.Welcome:
        this.limits = decodeControl(payloadOf(f));
        this.parser?.setLimit(inboundLimit(this.limits.maxFrameBytes, this.opts.maxInboundFrameBytes));
        this.large.shm.welcome(this.limits);
        this.welcomeWaiter?.resolve();
        return;
      default:
        return this.host.frame(f);
    }
  }

  /** Request `id` is given up (a call that timed out): its answer, if one comes, is ignored. */
  forget(id: number): void {
    this.requests.forget(id);
  }

  /**
   * Closes: pending requests reject with ECLOSED, `closing` runs, what the Outbox holds is written, then
   * the stream ends. False when already closed (or closed meanwhile by another close()).
   */
  async close(closing: () => void): Promise<boolean> {
    if (this.state === 'closed') return false;
    // Large sends still waiting for a pool slot get a moment to go out (PROTOCOL 8.5); never dropped silently.
    for (const deadline = Date.now() + 2000; this.outbox.holding && this.state === 'open' && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    if ((this.state as State) === 'closed') return false;
    if (this.outbox.holding) this.reportError(new QcopError('ECLOSED', `client closed with ${this.outbox.heldBytes} bytes of sends still waiting for a shared-memory slot`));
    const stream = this.stream;
    this.stateNow = 'closed';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopWatching();
    this.requests.fail(() => true, 'client closed');
    closing();
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
    return true;
  }
}
