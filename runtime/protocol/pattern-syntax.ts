// Qt wildcard syntax (SPEC §1): a pattern's text read into tokens over code points, and what each token accepts.

// A token is a literal code point (>= 0), ANY (`?`), STAR (`*`), or a set: SET_BASE - index.
export const ANY = -1;
export const STAR = -2;
export const SET_BASE = -3;

/** A bracket set: inclusive code point ranges as pairs lo, hi; `negate` for `[!...]` / `[^...]`. */
export interface CharSet {
  negate: boolean;
  ranges: number[];
}

const BANG = 0x21;
const STAR_CP = 0x2a;
const DASH = 0x2d;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const CARET = 0x5e;

/** Why `source` is not a valid pattern (a set like `[z-a]` runs backwards), or null. */
export function patternProblem(source: string): string | null {
  const r = tokenize(source);
  return typeof r === 'string' ? r : null;
}

/** The tokens of `source` (runs of `*` collapsed) and its sets, or why it is not a valid pattern. */
export function tokenize(source: string): { tokens: number[]; sets: CharSet[] } | string {
  // Code points, not UTF-16 units: `?` is one character, 😀 included (the old `u` regular expressions agreed).
  const cps = Array.from(source, (c) => c.codePointAt(0)!);
  const tokens: number[] = [];
  const sets: CharSet[] = [];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === STAR_CP) {
      // `**` is `*`: collapsing runs keeps the matcher free of ε-chains.
      if (tokens[tokens.length - 1] !== STAR) tokens.push(STAR);
    } else if (c === QUESTION) {
      tokens.push(ANY);
    } else if (c === OPEN) {
      const set = readSet(cps, i);
      if (typeof set === 'string') return set;
      if (set) {
        tokens.push(SET_BASE - sets.length);
        sets.push(set.set);
        i = set.end;
      } else {
        tokens.push(c); // an unclosed `[` is literal
      }
    } else {
      tokens.push(c);
    }
  }
  return { tokens, sets };
}

/**
 * Reads `[...]` opening at `open`; null when it never closes. A `]` right after the opening (or
 * after `!`/`^`) is literal, and a `-` is a range only between two characters: `[-a]`, `[a-]`
 * hold a literal `-`. After a range, `-` starts over (`[a-c-e]` is a–c, `-`, `e`).
 */
function readSet(cps: number[], open: number): { set: CharSet; end: number } | string | null {
  let i = open + 1;
  let negate = false;
  if (cps[i] === BANG || cps[i] === CARET) {
    negate = true;
    i++;
  }
  const first = i;
  let close = -1;
  for (let j = first + 1; j < cps.length; j++) {
    if (cps[j] === CLOSE) {
      close = j;
      break;
    }
  }
  if (close < 0) return null;
  const ranges: number[] = [];
  for (let j = first; j < close; ) {
    const lo = cps[j]!;
    if (j + 2 < close && cps[j + 1] === DASH) {
      const hi = cps[j + 2]!;
      if (lo > hi) return 'a set like [z-a] runs backwards';
      ranges.push(lo, hi);
      j += 3;
    } else {
      ranges.push(lo, lo);
      j++;
    }
  }
  return { set: { negate, ranges }, end: close };
}

/** True when token `t` (not a star) accepts code point `c`. */
export function accepts(t: number, c: number, sets: CharSet[]): boolean {
  return t >= 0 ? t === c : t === ANY || inSet(sets[SET_BASE - t]!, c);
}

function inSet(set: CharSet, c: number): boolean {
  const r = set.ranges;
  for (let i = 0; i < r.length; i += 2) if (c >= r[i]! && c <= r[i + 1]!) return !set.negate;
  return set.negate;
}
