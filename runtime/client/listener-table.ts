// The client's listeners by name, and which of them a message on a concrete channel goes to (on the shared NameIndex).
import { NameIndex, type IndexEntry } from '../protocol/name-index.js';
import type { Listener } from './handles.js';

/** Exact listeners first, then those of each matching pattern in registration order (docs/DECISIONS.md). */
function listenersOf(exact: IndexEntry<Set<Listener>> | undefined, patterns: IndexEntry<Set<Listener>>[]): Listener[] {
  const out = exact ? [...exact.value] : [];
  for (const p of patterns) for (const l of p.value) out.push(l);
  return out;
}

/** This process's listeners: exact names and patterns, each name registered once at the broker. */
export class ListenerTable {
  private readonly index = new NameIndex<Set<Listener>, Listener[]>(listenersOf);

  /** Adds `l`; returns another listener already holding its name, or null when the name is new here. */
  add(l: Listener): Listener | null {
    const entry = this.index.get(l.channel);
    if (!entry) {
      this.index.add(l.channel, new Set([l]));
      return null;
    }
    const sibling = entry.value.values().next().value as Listener;
    entry.value.add(l);
    this.index.changed(entry);
    return sibling;
  }

  /** Removes `l`; returns true when it was the last listener of its name. */
  remove(l: Listener): boolean {
    const entry = this.index.get(l.channel);
    if (!entry || !entry.value.delete(l)) return false;
    if (entry.value.size > 0) {
      this.index.changed(entry);
      return false;
    }
    this.index.delete(l.channel);
    return true;
  }

  /** Forgets a name with all its listeners (the broker refused it); returns them. */
  drop(name: string): Set<Listener> | undefined {
    return this.index.delete(name)?.value;
  }

  /** The listeners holding `name`. */
  get(name: string): Set<Listener> | undefined {
    return this.index.get(name)?.value;
  }

  /** Every name held (to register again after a reconnection). */
  names(): IterableIterator<string> {
    return this.index.names();
  }

  /** The listeners a message on the concrete `channel` goes to: exact ones first, then patterns (cached). */
  lookup(channel: string): Listener[] {
    return this.index.lookup(channel);
  }
}
