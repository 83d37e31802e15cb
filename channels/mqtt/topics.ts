// Channel names and MQTT topics (SPEC §11): channel `a/b` is topic `<prefix>a/b`; a pattern's subscription filter.
import { isPattern } from '../../runtime/internal.js';

/** The presence topic's name after the prefix: `<prefix>$online`. A channel of that name is not bridged. */
export const ONLINE = '$online';

/** The topic a channel is published on, or null when MQTT cannot carry the name (`+`, `#` or NUL in it). */
export function topicOf(prefix: string, channel: string): string | null {
  if (channel === ONLINE || /[+#\0]/.test(channel)) return null;
  return prefix + channel;
}

/** The channel a received topic stands for, or null when it is outside the prefix or the presence topic. */
export function channelOf(prefix: string, topic: string): string | null {
  if (!topic.startsWith(prefix)) return null;
  const channel = topic.slice(prefix.length);
  if (channel === '' || channel === ONLINE) return null;
  return channel;
}

/**
 * The MQTT subscription filter covering an imported channel pattern. A concrete name is its own
 * topic; a pattern subscribes from the last `/` before its first wildcard character with `#`
 * (`cmd/*` → `<prefix>cmd/#`, `cmd/le*` → `<prefix>cmd/#`, `*` → `<prefix>#`), and what arrives is
 * filtered by the pattern itself (MQTT's `#` also matches the parent level, and has no `?` or sets).
 */
export function filterOf(prefix: string, pattern: string): string {
  if (!isPattern(pattern)) {
    const t = topicOf(prefix, pattern);
    if (t !== null) return t;
  }
  const firstWild = pattern.search(/[*?[+#]/);
  const literal = firstWild < 0 ? pattern : pattern.slice(0, firstWild);
  const cut = literal.lastIndexOf('/');
  return prefix + (cut < 0 ? '' : literal.slice(0, cut + 1)) + '#';
}

/** The filters for a list of patterns, without duplicates or filters another one covers. */
export function filtersOf(prefix: string, patterns: string[]): string[] {
  const all = [...new Set(patterns.map((p) => filterOf(prefix, p)))];
  const covers = (wide: string, f: string): boolean => wide !== f && wide.endsWith('#') && f.startsWith(wide.slice(0, -1));
  return all.filter((f) => !all.some((w) => covers(w, f)));
}
