// The listener table: exact names and compiled patterns, who listens where, and the route cache.
import { isPattern } from '../protocol/names.js';
import { Pattern } from '../protocol/pattern.js';

/** Anything that can receive: the registry only needs identity. */
export type Receiver = object;

interface PatternEntry<R> {
  pattern: Pattern;
  receivers: Set<R>;
}

const CACHE_LIMIT = 4096;

/**
 * Maps listener names to receivers. A name is "registered" while at least one receiver holds it;
 * `onChange` reports the transitions (SPEC §2, registration events).
 */
export class Registry<R extends Receiver> {
  private readonly exact = new Map<string, Set<R>>();
  private readonly patterns = new Map<string, PatternEntry<R>>();
  private routeCache = new Map<string, R[]>();

  constructor(private readonly onChange: (name: string, registered: boolean) => void) {}

  /** Adds `name` for `receiver`; returns false if it already held it. */
  add(name: string, receiver: R): boolean {
    let set: Set<R>;
    if (isPattern(name)) {
      let entry = this.patterns.get(name);
      if (!entry) {
        entry = { pattern: new Pattern(name), receivers: new Set() };
        this.patterns.set(name, entry);
      }
      set = entry.receivers;
    } else {
      let s = this.exact.get(name);
      if (!s) {
        s = new Set();
        this.exact.set(name, s);
      }
      set = s;
    }
    if (set.has(receiver)) return false;
    set.add(receiver);
    this.routeCache.clear();
    if (set.size === 1) this.onChange(name, true);
    return true;
  }

  /** Removes `name` for `receiver`; returns false if it did not hold it. */
  remove(name: string, receiver: R): boolean {
    const pattern = isPattern(name);
    const set = pattern ? this.patterns.get(name)?.receivers : this.exact.get(name);
    if (!set || !set.delete(receiver)) return false;
    this.routeCache.clear();
    if (set.size === 0) {
      if (pattern) this.patterns.delete(name);
      else this.exact.delete(name);
      this.onChange(name, false);
    }
    return true;
  }

  /** Every receiver that a message on the concrete `channel` reaches, each once. */
  route(channel: string): R[] {
    const cached = this.routeCache.get(channel);
    if (cached) return cached;
    const exact = this.exact.get(channel);
    let out: R[];
    if (this.patterns.size === 0) {
      out = exact ? [...exact] : [];
    } else {
      const seen = new Set<R>(exact);
      for (const entry of this.patterns.values()) {
        if (entry.pattern.matches(channel)) for (const r of entry.receivers) seen.add(r);
      }
      out = [...seen];
    }
    if (this.routeCache.size >= CACHE_LIMIT) this.routeCache = new Map();
    this.routeCache.set(channel, out);
    return out;
  }

  /** Registered listener names (exact and patterns). */
  *names(): IterableIterator<string> {
    yield* this.exact.keys();
    yield* this.patterns.keys();
  }

  /** Number of registered listener names. */
  get size(): number {
    return this.exact.size + this.patterns.size;
  }

  /** True while `name` is registered by anyone. */
  has(name: string): boolean {
    return isPattern(name) ? this.patterns.has(name) : this.exact.has(name);
  }
}
