// A watch's initial report (PROTOCOL 3.7): the names registered now, sent in slices when there are many.
import { work } from '../protocol/pattern.js';
import type { Job } from './turns.js';
import { EVENT_STEPS, eventFrame, type EventSink, type PendingReport, type Watch } from './watches.js';

/** What the report reads: registered names in registration order, a live view. */
export interface RegisteredNames {
  has(name: string): boolean;
  registered(prefix: string): IterableIterator<{ readonly name: string; readonly seq: number }>;
  readonly lastSeq: number;
}

type ReportConn = EventSink & { readonly state: string };

/**
 * Reports the state at the moment the watch was made (its snapshot number), even when that
 * takes several turns: names registered later are skipped (their own events say so); a name
 * that goes away before the scan reaches it is reported at once, as it was registered at the
 * snapshot. Changes meanwhile are held and sent after the result, so the watcher sees the initial
 * state, the result, then changes — what a report made in one go gives.
 */
export class InitialReport<C extends ReportConn> implements PendingReport, Job {
  private readonly snapshot: number;
  private readonly names: Iterator<{ readonly name: string; readonly seq: number }>;
  // Registration number of the last name visited: names at or below it have been reported.
  private reached = 0;
  private held: Array<[string, boolean]> = [];
  private over = false;

  constructor(
    private readonly watch: Watch<C>,
    registry: RegisteredNames,
    private readonly reports: Set<PendingReport>,
    /** Sends the watch request's result: after the initial events, before the held changes. */
    private readonly done: () => void,
  ) {
    this.snapshot = registry.lastSeq;
    // Only names that may start with the pattern's literal prefix: `QPE/*` skips the others.
    this.names = registry.registered(watch.pattern!.prefix);
    watch.report = this;
    reports.add(this);
  }

  /** Sends the next slice, about `budget` steps of it; true once the report and its result are out. */
  step(budget: number): boolean {
    if (this.over) return true;
    const w = this.watch;
    const pattern = w.pattern!;
    const start = work.steps;
    for (;;) {
      if (w.conn.state === 'closed') return this.finish(false);
      const next = this.names.next();
      // In registration order: past the snapshot, everything left came later.
      if (next.done || next.value.seq > this.snapshot) return this.finish(true);
      const { name, seq } = next.value;
      this.reached = seq;
      if (pattern.matches(name)) this.send(name);
      if (work.steps - start >= budget) return false;
    }
  }

  removed(name: string, seq: number): void {
    // Gone before the scan reached it: it was registered at the snapshot, so it is reported now.
    if (!this.over && seq <= this.snapshot && seq > this.reached && this.watch.pattern!.matches(name)) this.send(name);
  }

  cancel(): void {
    if (!this.over) this.finish(false);
  }

  defer(name: string, registered: boolean): boolean {
    if (this.over) return false;
    this.held.push([name, registered]);
    return true;
  }

  private send(name: string): void {
    this.watch.conn.push(eventFrame(this.watch.id, name, true, true));
    work.steps += EVENT_STEPS;
  }

  private finish(answer: boolean): true {
    this.over = true;
    this.watch.report = null;
    this.reports.delete(this);
    if (!answer) return true;
    this.done();
    for (const [name, registered] of this.held) this.watch.conn.push(eventFrame(this.watch.id, name, registered, false));
    work.steps += this.held.length * EVENT_STEPS;
    this.held = [];
    return true;
  }
}

/**
 * Starts the report of a new watch. A watch on one exact name needs one lookup; a pattern watch
 * scans the registered names under its literal prefix, so it goes through `run`, which spreads
 * it over turns when it is long (turns.ts).
 */
export function reportInitial<C extends ReportConn>(
  watch: Watch<C>,
  registry: RegisteredNames,
  reports: Set<PendingReport>,
  run: (job: Job) => void,
  done: () => void,
): void {
  if (!watch.pattern) {
    if (registry.has(watch.name)) watch.conn.push(eventFrame(watch.id, watch.name, true, true));
    done();
    return;
  }
  run(new InitialReport(watch, registry, reports, done));
}
