// Qt wildcard patterns (SPEC §1) compiled to tokens and matched in linear time (SPEC §8): no regular expressions.
import { StarNfa } from './pattern-nfa.js';
import { accepts, STAR, tokenize, type CharSet } from './pattern-syntax.js';
import { work } from './work.js';

export { patternProblem } from './pattern-syntax.js';
export { work } from './work.js';

/** The code points of a text, converted once and reused while the same text is tested against many patterns. */
class CodePoints {
  codes = new Int32Array(256);
  length = 0;
  private text: string | null = null;

  /** Loads `s` (a no-op when it is the text loaded last). */
  load(s: string): this {
    if (s === this.text) return this;
    if (this.codes.length < s.length) this.codes = new Int32Array(s.length);
    const codes = this.codes;
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          codes[n++] = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          i++;
          continue;
        }
      }
      codes[n++] = c;
    }
    this.length = n;
    this.text = s;
    return this;
  }
}

const scratch = new CodePoints();

/** How a pattern is matched: a shape that a string method decides, or the token matcher. */
const enum Shape {
  General,
  /** No wildcard at all (`Pattern.literal`): equality. */
  Literal,
  /** Literal characters, then one final `*`: the common `QPE/*`. */
  Prefix,
}

/**
 * A compiled Qt wildcard: `*` any run of characters including `/`, `?` any one character
 * including `/`, `[abc]`, `[a-z]`, `[!abc]` / `[^abc]` a set; an unclosed `[` is literal.
 * Matching costs at most O(len(pattern) × len(name)) steps (SPEC §8).
 */
export class Pattern {
  /** The text as written. */
  readonly source: string;
  /** The literal characters every matching name starts with (UTF-16), for bucketing. */
  readonly prefix: string;
  /** Fewest characters a matching name has (code points, so also a bound on UTF-16 units). */
  readonly minLength: number;
  private readonly tokens: Int32Array;
  private readonly sets: CharSet[];
  private readonly shape: Shape;
  // Head [0, headEnd) before the first star and tail [tailStart, n) after the last are anchored;
  // between them, when there are two stars or more, the middle `*S1*S2...*` runs as an NFA.
  private readonly headEnd: number;
  private readonly tailStart: number;
  private readonly middle: StarNfa | null;

  /** Compiles `source`; throws a SyntaxError for a backwards range (the name rules refuse those first, names.ts). */
  constructor(source: string, literal = false) {
    this.source = source;
    const t = literal ? { tokens: Array.from(source, (c) => c.codePointAt(0)!), sets: [] } : tokenize(source);
    if (typeof t === 'string') throw new SyntaxError(`invalid pattern '${source}': ${t}`);
    const tokens = (this.tokens = Int32Array.from(t.tokens));
    this.sets = t.sets;
    const stars: number[] = [];
    let head = 0;
    while (head < tokens.length && tokens[head]! >= 0) head++;
    this.prefix = String.fromCodePoint(...tokens.subarray(0, head));
    for (let i = 0; i < tokens.length; i++) if (tokens[i] === STAR) stars.push(i);
    this.minLength = tokens.length - stars.length;
    if (stars.length === 0) {
      this.headEnd = this.tailStart = tokens.length;
    } else {
      this.headEnd = stars[0]!;
      this.tailStart = stars[stars.length - 1]! + 1;
    }
    this.middle = stars.length >= 2 ? new StarNfa(tokens.subarray(this.headEnd, this.tailStart), t.sets) : null;
    // A prefix ending in a lone high surrogate could match half of a pair in code units: keep those general.
    const last = this.prefix.charCodeAt(this.prefix.length - 1);
    const unitSafe = !(last >= 0xd800 && last <= 0xdbff);
    if (head === tokens.length && unitSafe) this.shape = Shape.Literal;
    else if (head === tokens.length - 1 && tokens[head] === STAR && unitSafe) this.shape = Shape.Prefix;
    else this.shape = Shape.General;
  }

  /** A pattern that matches `name` only, whatever characters it holds (for plain names in filter lists). */
  static literal(name: string): Pattern {
    return new Pattern(name, true);
  }

  /** True when the whole of `name` matches. */
  matches(name: string): boolean {
    work.steps++;
    if (this.shape === Shape.Literal) return name === this.source;
    if (name.length < this.minLength || !name.startsWith(this.prefix)) return false;
    if (this.shape === Shape.Prefix) return true;
    const cp = scratch.load(name);
    return this.test(cp.codes, cp.length);
  }

  /** The token matcher over code points: head and tail are anchored, the middle runs as an NFA. */
  private test(codes: Int32Array, n: number): boolean {
    const last = this.tokens.length;
    if (this.headEnd === last) return n === last && this.run(0, last, codes, 0);
    const tailLength = last - this.tailStart;
    if (n < this.minLength) return false;
    if (!this.run(0, this.headEnd, codes, 0) || !this.run(this.tailStart, last, codes, n - tailLength)) return false;
    return this.middle === null || this.middle.matches(codes, this.headEnd, n - tailLength);
  }

  /** True when tokens [a, b) (no star among them) match the characters from `at`, one each. */
  private run(a: number, b: number, codes: Int32Array, at: number): boolean {
    const tokens = this.tokens;
    let k = a;
    for (; k < b; k++, at++) {
      const t = tokens[k]!;
      const c = codes[at]!;
      if (!accepts(t, c, this.sets)) break;
    }
    work.steps += k - a + 1;
    return k === b;
  }
}
