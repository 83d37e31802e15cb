// Why a connection's input is paused: fair turns, backpressure for receivers; read again only when no reason holds it.
import type { Duplex } from 'node:stream';

/** What pausing needs of a connection. */
export interface PausedConn {
  readonly stream: Duplex;
  readonly state: string;
}

/**
 * The one place that pauses and resumes a connection's stream (turns.ts, connection.ts). Each
 * holder is a reason (the turns, or a receiver whose queue the connection fills); the stream is
 * paused when the first reason comes and resumed when the last one goes, so one holder's release
 * never reads for a connection another still holds.
 */
export class Pauses<C extends PausedConn> {
  private readonly reasons = new Map<C, Set<unknown>>();

  /** Holds `c` for `reason`; true if this reason is new. */
  pause(c: C, reason: unknown): boolean {
    let set = this.reasons.get(c);
    if (!set) {
      this.reasons.set(c, (set = new Set()));
      c.stream.pause();
    }
    if (set.has(reason)) return false;
    set.add(reason);
    return true;
  }

  /** Releases `c` from `reason`; reads again when nothing else holds it. */
  resume(c: C, reason: unknown): void {
    const set = this.reasons.get(c);
    if (!set || !set.delete(reason) || set.size > 0) return;
    this.reasons.delete(c);
    if (c.state !== 'closed') c.stream.resume();
  }

  /** True while `reason` (or, without one, anything) holds `c`. */
  held(c: C, reason?: unknown): boolean {
    const set = this.reasons.get(c);
    return set !== undefined && (reason === undefined || set.has(reason));
  }

  /** Forgets a closed connection. */
  closed(c: C): void {
    this.reasons.delete(c);
  }
}
