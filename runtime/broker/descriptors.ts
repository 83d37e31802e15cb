// Running out of file descriptors (SPEC §8): the process limit, a count near it, refusals counted and logged once per burst.
import * as fs from 'node:fs';

/**
 * Descriptors kept free once connections took the rest: the broker still needs some to serve the
 * clients it has (shared-memory segments, the stale-socket probe, a carrier's dial, its logs).
 */
export const FD_RESERVE = 16;
/** Accepts between two exact counts while the estimate is far from the limit. */
const RECOUNT_EVERY = 64;
/** At most one "out of file descriptors" line per this many milliseconds, however the bursts come. */
const LOG_EVERY_MS = 10_000;

type Log = (level: 'error' | 'warn', text: string) => void;

/**
 * Keeps new connections from taking the last descriptors: past `limit - FD_RESERVE` a connection
 * is refused (the broker answers ELIMIT), counted, and the first refusal of a burst is logged;
 * accept errors the system reports (EMFILE, ENFILE) are counted and logged the same way.
 */
export class Descriptors {
  /** Connections refused for lack of descriptors. */
  refused = 0;
  /** Accepts that failed in the system (EMFILE, ENFILE and the like). */
  acceptErrors = 0;
  private limitCache: number | undefined;
  private lastOpen = -1;
  private lastHeld = 0;
  private sinceCount = 0;
  private burst = 0;
  private burstLogged = false;
  private loggedAt = -Infinity;

  constructor(private readonly log: Log) {}

  /** The soft limit of open descriptors (`ulimit -n`, `LimitNOFILE=`); Infinity when unknown. */
  get limit(): number {
    this.limitCache ??= readLimit();
    return this.limitCache;
  }

  /** Descriptors open in this process now, or -1 when /proc cannot tell. */
  open(): number {
    try {
      return fs.readdirSync('/proc/self/fd').length - 1; // the listing's own descriptor
    } catch {
      return -1;
    }
  }

  /**
   * True when a connection just accepted must be refused; `held` is the number of connections
   * the broker holds. Reading /proc costs about 1 µs per open descriptor, so the count is
   * estimated from the connections and made exact near the limit and every RECOUNT_EVERY accepts.
   */
  exhausted(held: number): boolean {
    const limit = this.limit;
    if (!Number.isFinite(limit)) return false;
    let open = this.lastOpen + (held - this.lastHeld);
    if (this.lastOpen < 0 || open >= limit - 2 * FD_RESERVE || ++this.sinceCount >= RECOUNT_EVERY) {
      open = this.open();
      if (open < 0) return false;
      this.lastOpen = open;
      this.lastHeld = held;
      this.sinceCount = 0;
    }
    if (open <= limit - FD_RESERVE) return false;
    this.refused++;
    this.startBurst(`${open} of ${limit} descriptors are open; refusing new connections (ELIMIT) until some close`);
    return true;
  }

  /** A connection was accepted: a burst of refusals, if there was one, is over. */
  accepted(): void {
    if (this.burst === 0) return;
    if (this.burstLogged) this.log('warn', `file descriptors available again; ${this.burst} connection(s) were refused or lost meanwhile`);
    this.burst = 0;
    this.burstLogged = false;
  }

  /** The system failed an accept; true when it was for lack of descriptors (then counted and logged). */
  acceptFailed(err: NodeJS.ErrnoException): boolean {
    if (err.code !== 'EMFILE' && err.code !== 'ENFILE') return false;
    this.acceptErrors++;
    this.startBurst(`accept failed with ${err.code}`);
    return true;
  }

  /** Figures for `stats()`. */
  stats(): Record<string, unknown> {
    const limit = this.limit;
    return { limit: Number.isFinite(limit) ? limit : null, open: this.open(), refused: this.refused, acceptErrors: this.acceptErrors };
  }

  private startBurst(what: string): void {
    if (this.burst++ > 0 || Date.now() - this.loggedAt < LOG_EVERY_MS) return;
    this.burstLogged = true;
    this.loggedAt = Date.now();
    this.log('error', `out of file descriptors: ${what}. Clients already connected are still served; ` +
      'raise the limit (ulimit -n, LimitNOFILE= in the systemd unit) or lower maxConnections');
  }
}

/** The soft "Max open files" of this process from /proc/self/limits; Infinity when unknown or unlimited. */
function readLimit(): number {
  try {
    const line = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    const n = Number(line?.[1]);
    return Number.isFinite(n) && n > 0 ? n : Infinity;
  } catch {
    return Infinity;
  }
}
