// Qt wildcard matching for carriers that filter by pattern themselves (a copy of runtime/protocol/pattern.ts,
// which is not public; test/channels/serial-frame.test.ts checks the two agree).
/**
 * Compiles a Qt-style wildcard: `*` any run of characters including `/`, `?` any one character,
 * `[abc]`, `[a-z]`, `[!abc]` / `[^abc]` a set; an unclosed `[` is literal.
 */
export function compilePattern(pattern: string): RegExp {
  let re = '^';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') {
      re += '[^]*';
      while (chars[i + 1] === '*') i++;
    } else if (c === '?') {
      re += '[^]';
    } else if (c === '[') {
      const set = readSet(chars, i);
      if (set) {
        re += set.source;
        i = set.end;
      } else {
        re += '\\[';
      }
    } else {
      re += escape(c);
    }
  }
  return new RegExp(re + '$', 'u');
}

function readSet(chars: string[], open: number): { source: string; end: number } | null {
  let i = open + 1;
  let negate = false;
  if (chars[i] === '!' || chars[i] === '^') {
    negate = true;
    i++;
  }
  let body = '';
  const first = i;
  for (; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === ']' && i > first) return { source: `[${negate ? '^' : ''}${body}]`, end: i };
    body += c === '-' && i > first && chars[i + 1] !== ']' ? '-' : escapeInSet(c);
  }
  return null;
}

function escape(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? '\\' + c : c;
}

function escapeInSet(c: string): string {
  return /[\\\]^[-]/.test(c) ? '\\' + c : c;
}

/** A pattern with its compiled matcher. */
export class Pattern {
  readonly source: string;
  private readonly re: RegExp;

  constructor(source: string) {
    this.source = source;
    this.re = compilePattern(source);
  }

  /** True when the concrete name matches. */
  matches(name: string): boolean {
    return this.re.test(name);
  }
}

/** True when `channel` matches any of `patterns` (a name without `*` matches only itself). */
export function matchesAny(patterns: Pattern[], channel: string): boolean {
  for (const p of patterns) if (p.matches(channel)) return true;
  return false;
}

/** Compiles a list of listener names: patterns as wildcards, plain names literally. */
export function compileAll(names: string[]): Pattern[] {
  return names.map((n) => (n.includes('*') ? new Pattern(n) : new Pattern(n.replace(/[?[]/g, '[$&]'))));
}
