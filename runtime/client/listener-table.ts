// The client's listeners by name, and which of them a message on a concrete channel goes to (cached).
import { isPattern } from '../protocol/names.js';
import { Pattern } from '../protocol/pattern.js';
import type { Listener } from './handles.js';

const CACHE_LIMIT = 4096;

/** This process's listeners: exact names and patterns, each name registered once at the broker. */
export class ListenerTable {
  private readonly byName = new Map<string, Set<Listener>>();
  private readonly patterns = new Map<string, Pattern>();
  private routeCache = new Map<string, Listener[]>();

  /** Adds `l`; returns another listener already holding its name, or null when the name is new here. */
  add(l: Listener): Listener | null {
    this.routeCache.clear();
    const set = this.byName.get(l.channel);
    if (set) {
      const sibling = set.values().next().value as Listener;
      set.add(l);
      return sibling;
    }
    this.byName.set(l.channel, new Set([l]));
    if (isPattern(l.channel)) this.patterns.set(l.channel, new Pattern(l.channel));
    return null;
  }

  /** Removes `l`; returns true when it was the last listener of its name. */
  remove(l: Listener): boolean {
    const set = this.byName.get(l.channel);
    if (!set || !set.delete(l)) return false;
    this.routeCache.clear();
    if (set.size > 0) return false;
    this.drop(l.channel);
    return true;
  }

  /** Forgets a name with all its listeners (the broker refused it); returns them. */
  drop(name: string): Set<Listener> | undefined {
    const set = this.byName.get(name);
    this.byName.delete(name);
    this.patterns.delete(name);
    this.routeCache.clear();
    return set;
  }

  /** The listeners holding `name`. */
  get(name: string): Set<Listener> | undefined {
    return this.byName.get(name);
  }

  /** Every name held (to register again after a reconnection). */
  names(): IterableIterator<string> {
    return this.byName.keys();
  }

  /** The listeners a message on the concrete `channel` goes to: exact ones first, then patterns. */
  lookup(channel: string): Listener[] {
    let out = this.routeCache.get(channel);
    if (out) return out;
    out = [...(this.byName.get(channel) ?? [])];
    for (const [name, pattern] of this.patterns) {
      if (pattern.matches(channel)) out.push(...this.byName.get(name)!);
    }
    if (this.routeCache.size > CACHE_LIMIT) this.routeCache = new Map();
    this.routeCache.set(channel, out);
    return out;
  }
}
