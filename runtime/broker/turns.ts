// Fair turns: a connection whose requests took more than its share of matching work waits for the next turn, its frames kept in order (SPEC §8).
import type { Duplex } from 'node:stream';
import { work } from '../protocol/pattern.js';
import { Pauses } from './pauses.js';

/** Work spread over turns, such as a long initial report; the connection's later frames wait for it. */
export interface Job {
  /** Does about `budget` steps of work; true once finished. */
  step(budget: number): boolean;
}

/** What turns needs of a connection. */
export interface TurnConn {
  readonly stream: Duplex;
  readonly state: string;
}

/**
 * One connection's share of a turn, in matching steps (protocol/pattern.ts `work`; a step is
 * some 5–15 ns), and what all of them together may spend before the broker reads input again.
 * Counted, not timed, so the same input always takes the same path.
 */
export const SHARE_STEPS = 50_000;
export const TURN_STEPS = 200_000;

interface Held<F> {
  frames: F[];
  job: Job | null;
}

/**
 * Frames are handled at once while their connection stays within its share and the turn within
 * its total; frames that cost nothing (a send on a cached route) always are. Past either, the
 * connection is paused and its frames queue in order; at the next turn (setImmediate: after the
 * input of other connections has been read) waiting connections go on, oldest first, as far as
 * the turn allows. Work of closed connections (removing their names) runs in the same turns.
 * So a client's flood of costly requests slows that client, not the broker.
 */
export class Turns<C extends TurnConn, F> {
  private readonly held = new Map<C, Held<F>>();
  private readonly spent = new Map<C, number>();
  private background: Job[] = [];
  private total = 0;
  private scheduled = false;
  // While a frame is dispatched, work it starts is charged with the frame, to its connection.
  private dispatching = 0;

  constructor(
    private readonly dispatch: (c: C, f: F) => void,
    /** Shared with backpressure (connection.ts): a stream resumes only when neither holds it. */
    private readonly pauses: Pauses<C> = new Pauses<C>(),
  ) {}

  /** Handles one frame of `c` now, or queues it behind what `c` is waiting for. */
  frame(c: C, f: F): void {
    if (this.held.size > 0) {
      const h = this.held.get(c);
      if (h) {
        h.frames.push(f);
        return;
      }
    }
    const before = work.steps;
    this.dispatching++;
    try {
      this.dispatch(c, f);
    } finally {
      this.dispatching--;
    }
    const cost = work.steps - before;
    if (cost > 0) this.charge(c, cost);
  }

  /** Runs `job` for `c`: what is left of its share now, the rest in later turns, ahead of its frames. */
  run(c: C, job: Job): void {
    const left = Math.min(SHARE_STEPS - (this.spent.get(c) ?? 0), TURN_STEPS - this.total);
    if (left > 0 && job.step(left)) return;
    this.hold(c).job = job;
  }

  /** Runs `job`, which belongs to no live connection, in this and later turns. */
  later(job: Job): void {
    const before = work.steps;
    const finished = job.step(SHARE_STEPS);
    if (this.dispatching === 0) this.spend(work.steps - before);
    if (!finished) {
      this.background.push(job);
      this.schedule();
    }
  }

  /** Forgets a closed connection. */
  closed(c: C): void {
    this.held.delete(c);
    this.pauses.closed(c);
    this.spent.delete(c);
  }

  /** Connections waiting for a later turn, and background jobs. */
  get waiting(): number {
    return this.held.size + this.background.length;
  }

  private charge(c: C, cost: number): void {
    const spent = (this.spent.get(c) ?? 0) + cost;
    this.spent.set(c, spent);
    this.spend(cost);
    if (spent > SHARE_STEPS || this.total > TURN_STEPS) this.hold(c);
  }

  /** Counts work against this turn; the next turn, which starts the count again, is always on its way. */
  private spend(cost: number): void {
    if (cost <= 0) return;
    this.total += cost;
    this.schedule();
  }

  private hold(c: C): Held<F> {
    let h = this.held.get(c);
    if (!h) {
      this.held.set(c, (h = { frames: [], job: null }));
      this.pauses.pause(c, this);
      this.schedule();
    }
    return h;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.turn());
  }

  /** A new turn: shares start again; background jobs and waiting connections go on, oldest first, while the turn lasts. */
  private turn(): void {
    this.scheduled = false;
    this.spent.clear();
    this.total = 0;
    // Background work takes at most half a turn, so waiting connections always move too.
    const jobs = this.background;
    this.background = [];
    for (const job of jobs) {
      if (this.total >= TURN_STEPS / 2) this.background.push(job);
      else this.later(job);
    }
    let resumed = 0;
    for (const [c, h] of [...this.held]) {
      if (this.total >= TURN_STEPS && resumed > 0) break;
      this.held.delete(c);
      resumed++;
      if (c.state !== 'closed') this.resume(c, h);
    }
    // Connections and jobs still waiting need a turn even if nothing was spent in this one.
    if (this.held.size > 0 || this.background.length > 0) this.schedule();
  }

  private resume(c: C, h: Held<F>): void {
    if (h.job) {
      const before = work.steps;
      const finished = h.job.step(SHARE_STEPS);
      const cost = work.steps - before;
      this.spent.set(c, cost);
      this.spend(cost);
      if (!finished) {
        this.held.set(c, h); // to the back of the queue
        return;
      }
      h.job = null;
    }
    // Nothing else can arrive meanwhile (the stream is paused), so the queue is replayed as is
    // until a frame makes the connection wait again; the rest then waits behind that.
    for (let i = 0; i < h.frames.length; i++) {
      this.frame(c, h.frames[i]!);
      if (c.state === 'closed') return;
      const again = this.held.get(c);
      if (again) {
        const rest = h.frames.slice(i + 1);
        again.frames = again.frames.length > 0 ? again.frames.concat(rest) : rest;
        return;
      }
    }
    this.pauses.resume(c, this);
  }
}
