// The cross-process lock of a segment: an OFD byte lock excludes (the kernel drops it when its holder dies, in any
// pid namespace), the header's word carries futex waits and "the last holder died holding it"; turn-taking per handle.
import { native } from '../native/index.js';
import { QcopError } from '../protocol/errors.js';
import { F, LOCK_PID_MASK, LOCK_WAITERS, OFD, type Header } from './header.js';

/** What a successful lock reports: `recovered` when the previous holder died holding it. */
export interface LockResult {
  recovered: boolean;
  /** The segment was shrunk under this handle: what `buffer` shows is zeros, not the data (`SharedMemory.poisoned`). */
  poisoned: boolean;
}

/** What the lock itself knows (SharedMemory adds `poisoned`). */
export type Acquired = Omit<LockResult, 'poisoned'>;

/** Options of `lock()`. */
export interface LockOptions { timeoutMs?: number }

interface Turn { resolve: () => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }

/** Lock over one mapped header; not re-entrant: a handle's second `lock()` queues behind its first. */
export class SegmentLock {
  #busy = false; // this handle holds the lock or is acquiring it
  #held = false;
  #closed = false;
  #inflight: Promise<unknown> | null = null;
  readonly #turns: Turn[] = [];

  /** Lock over `header`, excluding through the open description `fd` (the handle's own). */
  constructor(private readonly header: Header, private readonly fd: number) {}

  /** True while this handle holds the lock. */
  get held(): boolean {
    return this.#held;
  }

  /** Resolves once this handle holds the lock; rejects ETIMEDOUT after `timeoutMs`, ECLOSED on detach. */
  async lock(opts: LockOptions = {}): Promise<Acquired> {
    this.#check();
    const { timeoutMs } = opts;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      throw new QcopError('EINVAL', 'timeoutMs must be a non-negative number');
    }
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    if (this.#busy) await this.#waitTurn(deadline);
    else this.#busy = true;
    try {
      const fast = this.#tryWord();
      if (fast) return fast;
      const left = deadline === undefined ? -1 : Math.max(0, deadline - Date.now());
      // The release of a lock won as the handle went away runs before close() lets the header be unmapped.
      const pending = native().ownedLockAcquire(this.header.buffer, F.LOCK * 4, this.fd, OFD.LOCK, process.pid, left).then((r) => {
        if (r >= 0 && this.#closed) this.#release();
        return r;
      });
      this.#inflight = pending;
      const r = await pending.finally(() => { this.#inflight = null; });
      if (this.#closed) throw new QcopError('ECLOSED', 'segment was detached while waiting for its lock');
      if (r === -1) throw new QcopError('ETIMEDOUT', `lock not acquired within ${timeoutMs} ms`);
      this.#held = true;
      return { recovered: r === 1 };
    } catch (e) {
      this.#nextTurn();
      throw e;
    }
  }

  /** Takes the lock now if free (or its holder is dead); null when another holder or a pending lock() has it. */
  tryLock(): Acquired | null {
    this.#check();
    if (this.#busy) return null;
    const r = this.#tryWord();
    if (r) this.#busy = true;
    return r;
  }

  /** Releases the lock held by this handle; EINVAL when it does not hold it. */
  unlock(): void {
    this.#check();
    if (!this.#held) throw new QcopError('EINVAL', 'unlock() without holding the lock');
    this.#release();
    this.#nextTurn();
  }

  /** Ends the lock: releases it if held, rejects queued lock() calls; returns a promise only while a native wait still uses the header. */
  close(): Promise<void> | null {
    this.#closed = true;
    if (this.#held) this.#release();
    for (const t of this.#turns.splice(0)) {
      if (t.timer) clearTimeout(t.timer);
      t.reject(new QcopError('ECLOSED', 'segment was detached'));
    }
    const pending = this.#inflight;
    if (!pending) return null;
    native().cancel(this.header.buffer); // the worker returns within one poll period
    return pending.then(() => undefined, () => undefined);
  }

  #check(): void {
    if (this.#closed) throw new QcopError('ECLOSED', 'segment is detached');
  }

  /** Takes the byte lock now if nobody holds it, then the word: a holder left in it died holding the lock. */
  #tryWord(): Acquired | null {
    if (!native().ofdLock(this.fd, OFD.LOCK, 1, 2)) return null;
    const i32 = this.header.i32;
    let v = Atomics.load(i32, F.LOCK);
    for (;;) {
      const seen = Atomics.compareExchange(i32, F.LOCK, v, process.pid | (v & LOCK_WAITERS));
      if (seen === v) break;
      v = seen;
    }
    this.#held = true;
    return { recovered: (v & LOCK_PID_MASK) !== 0 };
  }

  /** Clears the word before dropping the byte lock, so whoever takes the byte next sees a clean release. */
  #release(): void {
    this.#held = false;
    const old = Atomics.exchange(this.header.i32, F.LOCK, 0);
    native().ofdLock(this.fd, OFD.LOCK, 1, 0);
    if (old & LOCK_WAITERS) native().futexWake(this.header.buffer, F.LOCK * 4, 1);
  }

  #waitTurn(deadline: number | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const turn: Turn = { resolve, reject };
      if (deadline !== undefined) {
        turn.timer = setTimeout(() => {
          const i = this.#turns.indexOf(turn);
          if (i >= 0) this.#turns.splice(i, 1);
          reject(new QcopError('ETIMEDOUT', 'lock not acquired in time (this handle held it)'));
        }, Math.max(0, deadline - Date.now()));
      }
      this.#turns.push(turn);
    });
  }

  #nextTurn(): void {
    const next = this.#turns.shift();
    if (!next) {
      this.#busy = false;
      return;
    }
    if (next.timer) clearTimeout(next.timer);
    next.resolve(); // #busy stays true: the turn passes on directly
  }
}
