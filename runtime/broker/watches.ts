// Watches: who wants registration events for which name or pattern (SPEC §2, Qt's QCopChannelMonitor), on the shared NameIndex.
import { Flag, Kind } from '../protocol/constants.js';
import { encodeFrame } from '../protocol/frame.js';
import { NameIndex, type IndexEntry } from '../protocol/name-index.js';
import { work, type Pattern } from '../protocol/pattern.js';
import type { Job } from './turns.js';

/** Where a watch's events go: its connection's outbound queue. */
export interface EventSink {
  push(frame: Buffer): void;
}

/** An initial report still being sent (initial-report.ts). */
export interface PendingReport {
  /** Takes a change that must follow the report; false once the report is over. */
  defer(name: string, registered: boolean): boolean;
  /** Told at once, before the event is queued, that `name` (registration number `seq`) went away. */
  removed(name: string, seq: number): void;
  /** Ends the report without its result: the watch is gone. */
  cancel(): void;
}

export interface Watch<C> {
  conn: C;
  /** The watch's id: the id of the request that created it (PROTOCOL 3.7). */
  id: number;
  name: string;
  /** Shared by every watch on this text; null for a watch on one exact name. */
  pattern: Pattern | null;
  /** Transitions up to this number happened before the watch: its initial report covers them. */
  since: number;
  /** Set while the initial report is sent in slices. */
  report: PendingReport | null;
}

/** What one event costs in steps (encoding a frame and queueing it: about 64 pattern steps). */
export const EVENT_STEPS = 64;

/** An event frame (PROTOCOL 3.7). */
export function eventFrame(id: number, name: string, registered: boolean, initial: boolean): Buffer {
  return encodeFrame(Kind.Event, (registered ? Flag.Registered : 0) | (initial ? Flag.Initial : 0), id, 0, name, '');
}

function watchesOf<C>(exact: IndexEntry<Set<Watch<C>>> | undefined, patterns: IndexEntry<Set<Watch<C>>>[]): Watch<C>[] {
  const out = exact ? [...exact.value] : [];
  for (const p of patterns) for (const w of p.value) out.push(w);
  return out;
}

interface Transition {
  name: string;
  registered: boolean;
  /** Its place in the order of all transitions. */
  n: number;
}

/**
 * Finds the watches a listener name concerns: exact ones by name, patterns matched against the
 * name as text; watches on the same text share one index entry. Transitions are numbered as
 * they happen and told to the watches in that order through a queue, which `later` drains in
 * turns (turns.ts): usually at once, but a connection closing with thousands of names, or a
 * flood of registrations, cannot hold the broker while every watch pattern is tried on each.
 */
export class WatchTable<C extends EventSink> {
  private readonly index = new NameIndex<Set<Watch<C>>, Watch<C>[]>(watchesOf);
  /** Initial reports in progress: told of removals at once (initial-report.ts). */
  readonly reports = new Set<PendingReport>();
  private queue: Transition[] = [];
  private head = 0;
  private transitions = 0;
  private draining = false;
  private readonly drain: Job = { step: (budget) => this.drainSome(budget) };

  /** `later` runs a job now and, while it is not finished, in later turns. */
  constructor(private readonly later: (job: Job) => void = (job) => void job.step(Infinity)) {}

  add(conn: C, id: number, name: string): Watch<C> {
    let entry = this.index.get(name);
    const w: Watch<C> = { conn, id, name, pattern: null, since: this.transitions, report: null };
    if (!entry) {
      entry = this.index.add(name, new Set([w]));
    } else {
      entry.value.add(w);
      this.index.changed(entry);
    }
    w.pattern = entry.pattern;
    return w;
  }

  remove(w: Watch<C>): void {
    w.report?.cancel();
    const entry = this.index.get(w.name);
    if (!entry || !entry.value.delete(w)) return;
    if (entry.value.size === 0) this.index.delete(w.name);
    else this.index.changed(entry);
  }

  /** True while some watch is on exactly this text. */
  has(name: string): boolean {
    return this.index.get(name) !== undefined;
  }

  /** Every watch concerned by an event on listener name `name` (cached). */
  matching(name: string): Watch<C>[] {
    return this.index.lookup(name);
  }

  /** Records that listener name `name` (registration number `seq`) became registered or not; its events follow in order. */
  changed(name: string, registered: boolean, seq: number): void {
    if (!registered) for (const r of this.reports) r.removed(name, seq);
    this.queue.push({ name, registered, n: ++this.transitions });
    if (this.draining) return;
    this.draining = true;
    this.later(this.drain);
  }

  /** Distinct pattern texts watched. */
  get patternCount(): number {
    return this.index.patternCount;
  }

  /** Transitions recorded but not yet told to the watches. */
  get backlog(): number {
    return this.queue.length - this.head;
  }

  private drainSome(budget: number): boolean {
    const start = work.steps;
    while (this.head < this.queue.length) {
      this.tell(this.queue[this.head++]!);
      if (work.steps - start >= budget && this.head < this.queue.length) {
        if (this.head >= 1024) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        return false;
      }
    }
    this.queue = [];
    this.head = 0;
    this.draining = false;
    return true;
  }

  private tell(t: Transition): void {
    const watches = this.index.lookup(t.name);
    for (const w of watches) {
      if (t.n <= w.since || w.report?.defer(t.name, t.registered)) continue;
      w.conn.push(eventFrame(w.id, t.name, t.registered, false));
    }
    work.steps += 1 + watches.length * EVENT_STEPS;
  }
}
