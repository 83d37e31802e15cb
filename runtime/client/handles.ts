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

/** A registered listener (SPEC §3 `client.listen`). */
export class Listener extends EventEmitter {
  /** The channel or pattern as given to `listen()`. */
  readonly channel: string;
  /** @internal */
  readonly handler: (msg: ReceivedMessage) => void;
  /** @internal */
  readonly readiness = new Readiness();
  private closedFlag = false;

  constructor(private readonly owner: HandleOwner, channel: string, handler: (msg: ReceivedMessage) => void) {
    super();
    this.channel = channel;
    this.handler = handler;
  }

  /** Resolves once the broker has registered the name; rejects with its error (ELIMIT, EINVAL...). */
  get ready(): Promise<void> {
    return this.readiness.promise;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Stops this listener; the name is unregistered when the process's last listener on it closes. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.owner.closeListener(this);
  }
}

/** A watch on a listener name or pattern (SPEC §3 `client.watch`). */
export class Watch extends EventEmitter {
  /** The name or pattern as given to `watch()`. */
  readonly channel: string;
  /** @internal */
  readonly callback: (ev: WatchEvent) => void;
  /** @internal */
  readonly readiness = new Readiness();
  /** @internal listener names this watch currently knows as registered. */
  readonly known = new Set<string>();
  /** @internal names reported while re-synchronising after a reconnection. */
  resync: Set<string> | null = null;
  /** @internal true once the broker reported the initial state at least once. */
  established = false;
  /** @internal the broker-side id of the watch on the current connection. */
  id = 0;
  private closedFlag = false;

  constructor(private readonly owner: HandleOwner, channel: string, callback: (ev: WatchEvent) => void) {
    super();
    this.channel = channel;
    this.callback = callback;
  }

  /** Resolves once the initial state has been reported. */
  get ready(): Promise<void> {
    return this.readiness.promise;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Stops the watch. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.owner.closeWatch(this);
  }
}
