// One index of listener names, exact and patterns, used three times: the broker's registry and watches, the client's listeners.
import { isPattern } from './names.js';
import { Pattern, work } from './pattern.js';

/** One name in the index with what its owner keeps for it (receivers, listeners, watches). */
export interface IndexEntry<T> {
  readonly name: string;
  /** The compiled pattern, shared by everyone holding this text; null for an exact name. */
  readonly pattern: Pattern | null;
  /** Registration order: entries are visited, and matched patterns returned, in this order. */
  readonly seq: number;
  value: T;
  /** Texts whose cached lookup includes this pattern entry, to drop exactly those when it changes. */
  cachedIn: Set<string> | null;
}

interface Slot<T, D> {
  value: D;
  patterns: IndexEntry<T>[];
}

// Patterns are bucketed by at most this many code units of their literal prefix: a lookup tries
// one bucket per prefix length present (≤ 17 map lookups), and a text only meets the patterns
// whose prefix it starts with. A long shared prefix just shares a bucket; the match decides.
const KEY_UNITS = 16;

// With `byPrefix`, every name is also filed under its first 4, 8 and 16 code units, so that a
// pattern with a literal prefix at least that long (`QPE/*`, `sensors/imu/*`) finds the names it
// may match without visiting the others.
const HEADS = [16, 8, 4];
const NONE = new Set<never>();

/**
 * Names to entries. `lookup(text)` answers which entries a concrete text reaches — the exact
 * entry, then the patterns matching it in registration order — derived by `derive` and cached
 * per text. Changes drop exactly the cached texts they affect: an exact name its own slot, a
 * pattern the slots that included it (found through `cachedIn`), a new pattern the cached texts
 * it matches. Registration cost therefore depends on the cache bound and the patterns a text
 * can meet, never on how many names are registered.
 */
export class NameIndex<T, D> {
  private readonly entries = new Map<string, IndexEntry<T>>();
  private readonly byHead = new Map<string, Set<IndexEntry<T>>>();
  private readonly buckets = new Map<string, Set<IndexEntry<T>>>();
  private readonly keyLengths = new Int32Array(KEY_UNITS + 1);
  private readonly cache = new Map<string, Slot<T, D>>();
  private patterns = 0;
  private seq = 0;

  private readonly cacheLimit: number;
  private readonly heads: readonly number[];

  /**
   * `cacheLimit`: texts whose lookups are kept (0: none). `byPrefix`: also file names under their
   * heads, for `valuesUnder` (the broker's registry, whose watches report by prefix).
   */
  constructor(
    private readonly derive: (exact: IndexEntry<T> | undefined, patterns: IndexEntry<T>[]) => D,
    options: { cacheLimit?: number; byPrefix?: boolean } = {},
  ) {
    this.cacheLimit = options.cacheLimit ?? 4096;
    this.heads = options.byPrefix ? HEADS : [];
  }

  /** The entry of `name`, exact or pattern. */
  get(name: string): IndexEntry<T> | undefined {
    return this.entries.get(name);
  }

  /** Adds `name` (not present yet) with `value`. */
  add(name: string, value: T): IndexEntry<T> {
    const pattern = isPattern(name) ? new Pattern(name) : null;
    const entry: IndexEntry<T> = { name, pattern, seq: ++this.seq, value, cachedIn: null };
    this.entries.set(name, entry);
    for (const n of this.heads) {
      if (name.length < n) continue;
      const head = name.slice(0, n);
      let under = this.byHead.get(head);
      if (!under) this.byHead.set(head, (under = new Set()));
      under.add(entry);
    }
    if (pattern) {
      this.patterns++;
      const key = pattern.prefix.slice(0, KEY_UNITS);
      let bucket = this.buckets.get(key);
      if (!bucket) {
        this.buckets.set(key, (bucket = new Set()));
        this.keyLengths[key.length]!++;
      }
      bucket.add(entry);
      // The one unavoidable scan: which cached texts the new pattern reaches (bounded by the cache).
      for (const text of this.cache.keys()) if (pattern.matches(text)) this.drop(text);
    } else {
      this.drop(name);
    }
    return entry;
  }

  /** Removes `name`; returns its entry, or undefined when it was not there. */
  delete(name: string): IndexEntry<T> | undefined {
    const entry = this.entries.get(name);
    if (!entry) return undefined;
    this.entries.delete(name);
    for (const n of this.heads) {
      if (name.length < n) continue;
      const head = name.slice(0, n);
      const under = this.byHead.get(head)!;
      under.delete(entry);
      if (under.size === 0) this.byHead.delete(head);
    }
    this.changed(entry);
    if (entry.pattern) {
      this.patterns--;
      const key = entry.pattern.prefix.slice(0, KEY_UNITS);
      const bucket = this.buckets.get(key)!;
      bucket.delete(entry);
      if (bucket.size === 0) {
        this.buckets.delete(key);
        this.keyLengths[key.length]!--;
      }
    }
    return entry;
  }

  /** Says that `entry.value` changed: cached lookups that include it are derived again. */
  changed(entry: IndexEntry<T>): void {
    if (!entry.pattern) return this.drop(entry.name);
    const texts = entry.cachedIn;
    if (!texts) return;
    entry.cachedIn = null;
    for (const text of texts) this.drop(text);
  }

  /** What a message (or event) on the concrete `text` reaches; cached. */
  lookup(text: string): D {
    const slot = this.cache.get(text);
    if (slot) return slot.value;
    // A pattern entry is never "exact": as text it is reached only if it matches itself (`[ab]*` does not).
    let exact = this.entries.get(text);
    if (exact?.pattern) exact = undefined;
    const patterns = this.matching(text);
    const value = this.derive(exact, patterns);
    if (this.cacheLimit > 0) {
      // Oldest first out: one eviction per insertion keeps every change to the cache small.
      if (this.cache.size >= this.cacheLimit) this.drop(this.cache.keys().next().value as string);
      this.cache.set(text, { value, patterns });
      for (const p of patterns) (p.cachedIn ??= new Set()).add(text);
    }
    return value;
  }

  /** The pattern entries matching the concrete `text`, in registration order (uncached). */
  matching(text: string): IndexEntry<T>[] {
    if (this.patterns === 0) return [];
    const out: IndexEntry<T>[] = [];
    let buckets = 0;
    const max = Math.min(KEY_UNITS, text.length);
    for (let n = 0; n <= max; n++) {
      if (this.keyLengths[n] === 0) continue;
      const bucket = this.buckets.get(n === text.length ? text : text.slice(0, n));
      if (!bucket) continue;
      buckets++;
      for (const e of bucket) if (e.pattern!.matches(text)) out.push(e);
    }
    work.steps += max + 1;
    if (buckets > 1 && out.length > 1) out.sort((a, b) => a.seq - b.seq);
    return out;
  }

  /** Every entry in registration order; a live view (entries added meanwhile come last). */
  values(): IterableIterator<IndexEntry<T>> {
    return this.entries.values();
  }

  /**
   * The entries whose names may start with `prefix` (all of them when it is short), in
   * registration order; a live view like `values()`.
   */
  valuesUnder(prefix: string): IterableIterator<IndexEntry<T>> {
    for (const n of this.heads) if (prefix.length >= n) return (this.byHead.get(prefix.slice(0, n)) ?? NONE).values();
    return this.entries.values();
  }

  /** Every name in registration order. */
  names(): IterableIterator<string> {
    return this.entries.keys();
  }

  /** Number of names, exact and patterns. */
  get size(): number {
    return this.entries.size;
  }

  /** Number of patterns. */
  get patternCount(): number {
    return this.patterns;
  }

  /** The sequence number the next entry will be above: a snapshot point for reports. */
  get lastSeq(): number {
    return this.seq;
  }

  private drop(text: string): void {
    const slot = this.cache.get(text);
    if (!slot) return;
    this.cache.delete(text);
    for (const p of slot.patterns) p.cachedIn?.delete(text);
  }
}
