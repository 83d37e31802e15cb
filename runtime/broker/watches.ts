// Watches: who wants registration events for which name or pattern (SPEC §2, Qt's QCopChannelMonitor).
import { isPattern } from '../protocol/names.js';
import { Pattern } from '../protocol/pattern.js';

export interface Watch<C> {
  conn: C;
  /** The watch's id: the id of the request that created it (PROTOCOL 3.7). */
  id: number;
  name: string;
  pattern: Pattern | null;
}

/** Finds the watches a listener name concerns: exact ones by name, patterns matched against the name as text. */
export class WatchTable<C> {
  private readonly exact = new Map<string, Set<Watch<C>>>();
  private readonly patterns = new Set<Watch<C>>();

  add(conn: C, id: number, name: string): Watch<C> {
    const w: Watch<C> = { conn, id, name, pattern: isPattern(name) ? new Pattern(name) : null };
    if (w.pattern) {
      this.patterns.add(w);
    } else {
      let set = this.exact.get(name);
      if (!set) this.exact.set(name, (set = new Set()));
      set.add(w);
    }
    return w;
  }

  remove(w: Watch<C>): void {
    if (w.pattern) {
      this.patterns.delete(w);
      return;
    }
    const set = this.exact.get(w.name);
    if (set && set.delete(w) && set.size === 0) this.exact.delete(w.name);
  }

  /** True when `w` reports events for the listener name `name`. */
  static concerns<C>(w: Watch<C>, name: string): boolean {
    return w.pattern ? w.pattern.matches(name) : w.name === name;
  }

  /** Every watch concerned by an event on listener name `name`. */
  *matching(name: string): IterableIterator<Watch<C>> {
    const set = this.exact.get(name);
    if (set) yield* set;
    for (const w of this.patterns) if (w.pattern!.matches(name)) yield w;
  }
}
