// The handles `listen()` and `watch()` return: close them to stop; `'error'` events for their requests.
import { EventEmitter } from 'node:events';
import type { ReceivedMessage } from './message.js';

/** A registration event as `watch()` reports it (SPEC §2, §4). */
export interface WatchEvent {
  type: 'registered' | 'unregistered';
  channel: string;
  initial?: true;
}

/** Settles once: a promise created only when somebody asks for it, so an unobserved failure is not an unhandled rejection. */
class Readiness {
  private state: 'pending' | 'ok' | Error = 'pending';
  private waiters: Array<[() => void, (e: Error) => void]> = [];

  get promise(): Promise<void> {
    if (this.state === 'ok') return Promise.resolve();
    if (this.state instanceof Error) return Promise.reject(this.state);
    return new Promise((resolve, reject) => this.waiters.push([resolve, reject]));
  }

  settle(err?: Error): void {
    if (this.state !== 'pending') return;
    this.state = err ?? 'ok';
    for (const [resolve, reject] of this.waiters) (err ? reject(err) : resolve());
    this.waiters = [];
  }
}

/** What a handle needs from its client. */
export interface HandleOwner {
  closeListener(l: Listener): void;
  closeWatch(w: Watch): void;
  reportError(err: Error, handle?: EventEmitter): void;
}

/** What listeners and watches share: the name as given, readiness, and closing once. */
abstract class Handle extends EventEmitter {
  /** The channel or pattern as given to `listen()` or `watch()`. */
  readonly channel: string;
  /** @internal */
  readonly readiness = new Readiness();
  private closedFlag = false;

  constructor(protected readonly owner: HandleOwner, channel: string) {
    super();
    this.channel = channel;
  }

  /** Resolves once the broker has taken the request; rejects with its error (ELIMIT, EINVAL...). */
  get ready(): Promise<void> {
    return this.readiness.promise;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Stops this handle (once; later calls do nothing). */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.detachFromOwner();
  }

  /** Tells the owner the handle is closed. */
  protected abstract detachFromOwner(): void;
}

/** A registered listener (SPEC §3 `client.listen`): the name is unregistered when the process's last listener on it closes. */
export class Listener extends Handle {
  /** @internal */
  readonly handler: (msg: ReceivedMessage) => void;

  constructor(owner: HandleOwner, channel: string, handler: (msg: ReceivedMessage) => void) {
    super(owner, channel);
    this.handler = handler;
  }

  protected detachFromOwner(): void {
    this.owner.closeListener(this);
  }
}

/** A watch on a listener name or pattern (SPEC §3 `client.watch`); `ready` resolves once the initial state was reported. */
export class Watch extends Handle {
  /** @internal */
  readonly callback: (ev: WatchEvent) => void;
  /** @internal listener names this watch currently knows as registered. */
  readonly known = new Set<string>();
  /** @internal names reported while re-synchronising after a reconnection. */
  resync: Set<string> | null = null;
  /** @internal true once the broker reported the initial state at least once. */
  established = false;
  /** @internal the broker-side id of the watch on the current connection. */
  id = 0;

  constructor(owner: HandleOwner, channel: string, callback: (ev: WatchEvent) => void) {
    super(owner, channel);
    this.callback = callback;
  }

  /** @internal A listener name came or went: `known` follows, the callback hears it unless closed. */
  event(name: string, registered: boolean, initial: boolean): void {
    if (registered) this.known.add(name);
    else this.known.delete(name);
    if (this.closed) return;
    const ev: WatchEvent = { type: registered ? 'registered' : 'unregistered', channel: name };
    if (initial) ev.initial = true;
    this.callback(ev);
  }

  protected detachFromOwner(): void {
    this.owner.closeWatch(this);
  }
}
