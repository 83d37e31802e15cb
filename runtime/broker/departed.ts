// Nothing outlives its owner: when a local client departs (disconnect or death), the shared-memory
// objects it left behind are removed at once, while the broker runs, instead of waiting for `qcop shm gc`.
import { nativeAvailable } from '../native/index.js';
import { reclaimLeftovers } from '../shm/gc.js';

/**
 * Sweeps after a departure, in ms: at once (batched with the other deaths of the same moment), then twice
 * more for a process that closed its socket a little before its last mapping went (a graceful exit, or a
 * dying process whose memory the kernel tears down after its descriptors).
 */
export const DEPARTED_SWEEPS_MS = [20, 300, 2000] as const;

/** What the broker needs: where to log. */
export interface DepartedHost {
  log(level: 'error' | 'warn' | 'info' | 'debug', text: string): void;
}

/**
 * Collects the pids of departed clients and removes the stale objects they left (runtime/shm/gc.ts
 * `reclaimLeftovers`: pool segments, segments and semaphores they created or held). The broker's own
 * bookkeeping (listeners, watches, calls, slot references, its pool attachments) is released by
 * `Broker.onClose`; this is the part that lives in /dev/shm. Objects still held by a live process stay.
 */
export class Departed {
  /** Objects removed so far, and sweeps run. */
  readonly counters = { reclaimed: 0, sweeps: 0 };
  /** pid → the index in DEPARTED_SWEEPS_MS of its next sweep, and when that is due (ms since departure → epoch ms). */
  private readonly pending = new Map<number, { step: number; left: number }>();
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Infinity;
  private readonly enabled = nativeAvailable();
  private closed = false;

  constructor(private readonly host: DepartedHost) {}

  /** A local client with kernel-verified pid `pid` went away. */
  left(pid: number | undefined): void {
    if (!this.enabled || this.closed || !pid || pid <= 0) return;
    this.pending.set(pid, { step: 0, left: Date.now() });
    this.arm();
  }

  /** Stops sweeping (broker shutdown). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
  }

  private due(p: { step: number; left: number }): number {
    return p.left + DEPARTED_SWEEPS_MS[p.step]!;
  }

  /** Sets the timer for the earliest sweep owed (sooner than the one set, when a new departure needs it). */
  private arm(): void {
    let next = Infinity;
    for (const p of this.pending.values()) next = Math.min(next, this.due(p));
    if (next === Infinity || next >= this.timerDue) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = next;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, next - Date.now()));
    this.timer.unref?.();
  }

  private sweep(): void {
    this.timer = null;
    this.timerDue = Infinity;
    if (this.closed) return;
    const now = Date.now();
    // Every pending pid is looked for in one pass (one scan of /dev/shm); a pid's step advances only when it was due.
    const pids = new Set(this.pending.keys());
    this.counters.sweeps++;
    let removed: string[] = [];
    try {
      removed = reclaimLeftovers(pids);
    } catch (e) {
      this.host.log('warn', `reclaiming shared memory of departed clients: ${(e as Error).message}`);
    }
    if (removed.length > 0) {
      this.counters.reclaimed += removed.length;
      this.host.log('info', `removed ${removed.length} shared-memory object(s) left by departed pid(s) ${[...pids].join(' ')}: ${removed.slice(0, 5).join(', ')}${removed.length > 5 ? ', …' : ''}`);
    }
    for (const [pid, p] of this.pending) {
      if (this.due(p) > now + 5) continue;
      if (p.step + 1 >= DEPARTED_SWEEPS_MS.length) this.pending.delete(pid);
      else p.step++;
    }
    this.arm();
  }
}
