// The broker's listener names: who listens where, registration transitions, and routes (on the shared NameIndex).
import { NameIndex, type IndexEntry } from '../protocol/name-index.js';

/** Anything that can receive: the registry only needs identity. */
export type Receiver = object;

/** A registered name as watches see it: its text and when it was registered (NameIndex order). */
export interface Registered {
  readonly name: string;
  readonly seq: number;
}

/** Every receiver of the exact entry and the matching patterns, each once. */
function receiversOf<R>(exact: IndexEntry<Set<R>> | undefined, patterns: IndexEntry<Set<R>>[]): R[] {
  if (patterns.length === 0) return exact ? [...exact.value] : [];
  const seen = new Set<R>(exact?.value);
  for (const p of patterns) for (const r of p.value) seen.add(r);
  return [...seen];
}

/**
 * Maps listener names to receivers. A name is "registered" while at least one receiver holds it;
 * `onChange` reports the transitions with the name's registration number (SPEC §2, registration events).
 */
export class Registry<R extends Receiver> {
  private readonly index = new NameIndex<Set<R>, R[]>(receiversOf, { byPrefix: true });

  constructor(private readonly onChange: (name: string, registered: boolean, seq: number) => void) {}

  /** Adds `name` for `receiver`; returns false if it already held it. */
  add(name: string, receiver: R): boolean {
    const entry = this.index.get(name);
    if (!entry) {
      const added = this.index.add(name, new Set([receiver]));
      this.onChange(name, true, added.seq);
      return true;
    }
    if (entry.value.has(receiver)) return false;
    entry.value.add(receiver);
    this.index.changed(entry);
    return true;
  }

  /** Removes `name` for `receiver`; returns false if it did not hold it. */
  remove(name: string, receiver: R): boolean {
    const entry = this.index.get(name);
    if (!entry || !entry.value.delete(receiver)) return false;
    if (entry.value.size > 0) {
      this.index.changed(entry);
      return true;
    }
    this.index.delete(name);
    this.onChange(name, false, entry.seq);
    return true;
  }

  /** Every receiver that a message on the concrete `channel` reaches, each once (cached). */
  route(channel: string): R[] {
    return this.index.lookup(channel);
  }

  /** Registered listener names (exact and patterns), in registration order. */
  names(): IterableIterator<string> {
    return this.index.names();
  }

  /**
   * Registered names with their registration numbers, in registration order: all of them, or
   * those that may start with `prefix`; a live view for reports spread over turns.
   */
  registered(prefix = ''): IterableIterator<Registered> {
    return this.index.valuesUnder(prefix);
  }

  /** Registration number of the latest name: names above it were registered later. */
  get lastSeq(): number {
    return this.index.lastSeq;
  }

  /** Number of registered listener names. */
  get size(): number {
    return this.index.size;
  }

  /** Number of registered patterns (distinct texts). */
  get patternCount(): number {
    return this.index.patternCount;
  }

  /** True while `name` is registered by anyone. */
  has(name: string): boolean {
    return this.index.get(name) !== undefined;
  }
}
