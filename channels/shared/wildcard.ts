// Qt wildcard matching for carriers that filter by pattern themselves, on the runtime's own Pattern.
import { Pattern, isPattern } from '../../runtime/internal.js';

export { Pattern };

/** True when `channel` matches any of `patterns` (a name without `*` matches only itself). */
export function matchesAny(patterns: Pattern[], channel: string): boolean {
  for (const p of patterns) if (p.matches(channel)) return true;
  return false;
}

/** Compiles a list of listener names: patterns as wildcards, plain names literally (`?` and `[` included). */
export function compileAll(names: string[]): Pattern[] {
  return names.map((n) => (isPattern(n) ? new Pattern(n) : Pattern.literal(n)));
}
