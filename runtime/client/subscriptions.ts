// What a client receives: its listeners and watches, their registration at the broker (again after a
// reconnection), and the dispatch of messages and events to them. The client owns one, beside its Outbox.
import type { EventEmitter } from 'node:events';
import { Flag, HEADER_SIZE, Kind } from '../protocol/constants.js';
import type { QcopError } from '../protocol/errors.js';
import { payloadOf, type Frame } from '../protocol/frame.js';
import { LastName, decodeName } from '../protocol/names.js';
import { Listener, Watch, type HandleOwner, type WatchEvent } from './handles.js';
import { ListenerTable } from './listener-table.js';
import { ReceivedMessage, type CallAnswerer } from './message.js';

/** What the subscriptions need from their client: requests, errors, and the state of the connection. */
export interface SubscriptionHost {
  request(kind: Kind, flags: number, aux: number, channel: string, message: string, payload: Uint8Array | undefined, idempotent: boolean, id?: number): Promise<Frame>;
  newId(): number;
  reportError(err: Error, handle?: EventEmitter): void;
  reportErrorIfLive(err: Error): void;
  state(): 'connecting' | 'open' | 'disconnected' | 'closed';
  /** A function that acknowledges message `id` on the connection it came on, and does nothing on a later one. */
  acknowledger(id: number): () => void;
  /** A message by descriptor (PROTOCOL 8) for `targets`. */
  receiveLarge(f: Frame, channel: string, message: string, targets: Listener[]): void;
  /** Where the handlers of calls answer. */
  readonly answerer: CallAnswerer;
}

export class Subscriptions implements HandleOwner {
  private readonly listeners = new ListenerTable();
  private readonly watchesById = new Map<number, Watch>();
  private readonly watches = new Set<Watch>();
  private readonly lastChannel = new LastName();
  private readonly lastMessage = new LastName();

  constructor(private readonly host: SubscriptionHost) {}

  reportError(err: Error, handle?: EventEmitter): void {
    this.host.reportError(err, handle);
  }

  listen(channel: string, handler: (msg: ReceivedMessage) => unknown): Listener {
    const l = new Listener(this, channel, handler);
    const sibling = this.listeners.add(l);
    // The name is registered once per process: a second listener is ready when the first is.
    if (sibling) sibling.readiness.promise.then(() => l.readiness.settle(), (e: Error) => l.readiness.settle(e));
    else void this.registerName(channel);
    return l;
  }

  watch(channel: string, callback: (ev: WatchEvent) => void): Watch {
    const w = new Watch(this, channel, callback);
    this.watches.add(w);
    void this.startWatch(w);
    return w;
  }

  closeListener(l: Listener): void {
    if (!this.listeners.remove(l)) return;
    const state = this.host.state();
    if (state === 'open' || state === 'disconnected') {
      this.host.request(Kind.Unlisten, 0, 0, l.channel, '', undefined, true).catch((e: Error) => this.host.reportErrorIfLive(e));
    }
  }

  closeWatch(w: Watch): void {
    if (!this.watches.delete(w)) return;
    this.watchesById.delete(w.id);
    if (w.id && this.host.state() === 'open') {
      this.host.request(Kind.Unwatch, 0, w.id, w.channel, '', undefined, true).catch((e: Error) => this.host.reportErrorIfLive(e));
    }
  }

  /** The client closed: watches still waiting for their first state fail with `err`. */
  close(err: Error): void {
    for (const w of this.watches) w.readiness.settle(err);
  }

  /** Registers every listener name and watch again; resolves once the broker answered them all. */
  restore(): Array<Promise<void>> {
    const restored: Array<Promise<void>> = [];
    for (const name of this.listeners.names()) restored.push(this.registerName(name));
    for (const w of this.watches) {
      this.watchesById.delete(w.id);
      w.resync = w.established ? new Set() : null;
      restored.push(this.startWatch(w));
    }
    return restored;
  }

  /** Registers `name` at the broker; the promise settles (never rejects) once the broker answered. */
  private registerName(name: string): Promise<void> {
    return this.host.request(Kind.Listen, 0, 0, name, '', undefined, true).then(
      () => {
        for (const l of this.listeners.get(name) ?? []) l.readiness.settle();
      },
      (err: Error) => {
        if (this.host.state() === 'closed' || (err as QcopError).code === 'ECLOSED') return;
        // The broker refused the name: those listeners will never receive; tell them.
        const set = this.listeners.drop(name);
        if (!set) return;
        for (const l of set) {
          l.readiness.settle(err);
          this.host.reportError(err, l);
        }
      },
    );
  }

  /** Starts (or restarts) a watch; the promise settles (never rejects) once the initial state is in. */
  private startWatch(w: Watch): Promise<void> {
    const id = this.host.newId();
    w.id = id;
    this.watchesById.set(id, w);
    return this.host.request(Kind.Watch, 0, 0, w.channel, '', undefined, false, id).then(
      () => {
        if (w.resync) {
          // After a reconnection report only what changed meanwhile (SPEC §2).
          const now = w.resync;
          w.resync = null;
          for (const name of now) if (!w.known.has(name)) w.event(name, true, false);
          for (const name of [...w.known]) if (!now.has(name)) w.event(name, false, false);
        }
        w.established = true;
        w.readiness.settle();
      },
      (err: Error) => {
        this.watchesById.delete(id);
        if (this.host.state() === 'closed' || (err as QcopError).code === 'ECLOSED') return;
        this.watches.delete(w);
        w.readiness.settle(err);
        this.host.reportError(err, w);
      },
    );
  }

  /** A message from the broker (PROTOCOL 3.4) to the listeners it matches. */
  message(f: Frame): void {
    // A stream of messages on one channel decodes its names once (LastName compares bytes in place).
    let channel = this.lastChannel.get(f.raw, HEADER_SIZE, f.channelEnd);
    if (channel === null) {
      channel = decodeName(f.raw, HEADER_SIZE, f.channelEnd) ?? '';
      this.lastChannel.set(f.raw, HEADER_SIZE, f.channelEnd, channel);
    }
    let message = this.lastMessage.get(f.raw, f.channelEnd, f.messageEnd);
    if (message === null) {
      message = decodeName(f.raw, f.channelEnd, f.messageEnd) ?? '';
      this.lastMessage.set(f.raw, f.channelEnd, f.messageEnd, message);
    }
    const isCall = (f.flags & Flag.Call) !== 0;
    const targets = this.listeners.lookup(channel);
    if (f.flags & Flag.Shm) return this.host.receiveLarge(f, channel, message, targets);
    const msg = new ReceivedMessage(channel, message, payloadOf(f), isCall ? { id: f.id, via: this.host.answerer } : undefined);
    if (f.flags & Flag.Queued) return this.queued(f, msg, targets);
    if (f.flags & Flag.Retained) msg.retained = true;
    if (targets.length === 0) {
      // A listener closed while the message was on its way: a call must not wait for us.
      if (isCall) msg.decline!();
      return;
    }
    for (const l of targets) if (!l.closed) l.handler(msg);
  }

  /**
   * SPEC §10: a message of a queued channel is acknowledged once every handler returned, or the
   * promise it returned settled; one that throws is acknowledged too (it finished). A message no
   * listener takes any more is not acknowledged: the broker gives it again after a reconnection.
   */
  private queued(f: Frame, msg: ReceivedMessage, targets: readonly Listener[]): void {
    msg.redelivered = (f.flags & Flag.Redelivered) !== 0;
    const live = targets.filter((l) => !l.closed);
    if (live.length === 0) return;
    const waits: Array<PromiseLike<unknown>> = [];
    const ack = this.host.acknowledger(f.id);
    let finished = false;
    try {
      for (const l of live) {
        const r = (l.handler as (m: ReceivedMessage) => unknown)(msg);
        if (r && typeof (r as PromiseLike<unknown>).then === 'function') waits.push(r as PromiseLike<unknown>);
      }
      finished = true;
    } finally {
      // A handler that threw finished too: acknowledged, then the exception goes on as for any message.
      if (!finished || waits.length === 0) ack();
    }
    if (waits.length > 0) Promise.allSettled(waits).then(ack, ack);
  }

  /** A registration event (PROTOCOL 3.7) for the watch it names. */
  event(f: Frame): void {
    const w = this.watchesById.get(f.id);
    if (!w) return;
    const name = decodeName(f.raw, HEADER_SIZE, f.channelEnd) ?? '';
    const registered = (f.flags & Flag.Registered) !== 0;
    if (w.resync && f.flags & Flag.Initial) {
      w.resync.add(name);
      return;
    }
    w.event(name, registered, (f.flags & Flag.Initial) !== 0);
  }
}
