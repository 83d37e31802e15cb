// The linear matcher against the regular-expression compiler it replaced, on random patterns and names.
// QCOP_PATTERN_SEED replays a run; the seed is printed first.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Pattern, patternProblem } from '../../../runtime/protocol/pattern.js';

/**
 * The former matcher (a regular expression per pattern), kept here as the reference: exponential
 * on hostile inputs, so it only sees short patterns with few stars.
 */
function referenceRegExp(pattern: string): RegExp {
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
      const set = referenceSet(chars, i);
      if (set) {
        re += set.source;
        i = set.end;
      } else {
        re += '\\[';
      }
    } else {
      re += /[\\^$.*+?()[\]{}|/]/.test(c) ? '\\' + c : c;
    }
  }
  return new RegExp(re + '$', 'u');
}

function referenceSet(chars: string[], open: number): { source: string; end: number } | null {
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
    // In a group: Node 18's V8 mis-matches a bare negated set before `[^]*` when an astral character meets it.
    if (c === ']' && i > first) return { source: `(?:[${negate ? '^' : ''}${body}])`, end: i };
    body += c === '-' && i > first && chars[i + 1] !== ']' ? '-' : /[\\\]^[-]/.test(c) ? '\\' + c : c;
  }
  return null;
}

const SEED = Number(process.env.QCOP_PATTERN_SEED || Date.now() % 2 ** 31) >>> 0;
console.log(`pattern differential: seed ${SEED} (replay with QCOP_PATTERN_SEED=${SEED})`);

/** mulberry32: small, seeded, good enough to spread cases. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Few letters so that random names often match; the specials of the syntax; a pair and an accent for code points.
const NAME_CHARS = ['a', 'b', 'c', '-', '/', ']', '[', '!', '^', '*', '?', '\\', 'é', '😀'];
const PATTERN_CHARS = [...NAME_CHARS, '*', '*', '?', '[', '[', ']', '-', '!', '^', 'z'];

function pick<T>(r: () => number, xs: T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function randomText(r: () => number, alphabet: string[], max: number): string {
  let s = '';
  for (let n = Math.floor(r() * (max + 1)); n > 0; n--) s += pick(r, alphabet);
  return s;
}

/** A name built to match `pattern` often: each token replaced by something it accepts. */
function nameFor(r: () => number, pattern: string): string {
  let s = '';
  for (const c of pattern) {
    if (c === '*') s += randomText(r, NAME_CHARS, 3);
    else if (c === '?' || c === '[' || c === ']') s += pick(r, NAME_CHARS);
    else if (r() < 0.9) s += c;
  }
  return s;
}

test('agrees with the regular-expression reference on 20,000 random pattern/name pairs', () => {
  const r = rng(SEED);
  let compared = 0;
  let matched = 0;
  const disagreements: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    let pattern = randomText(r, PATTERN_CHARS, 9);
    // Keep the reference out of its exponential cases: at most three stars.
    if ((pattern.match(/\*/g) ?? []).length > 3) pattern = pattern.replace(/\*/g, '');
    let reference: RegExp | null = null;
    try {
      reference = referenceRegExp(pattern);
    } catch {
      // A backwards range: both must refuse it.
    }
    if (!reference) {
      if (patternProblem(pattern) === null) disagreements.push(`'${pattern}': the reference refuses it, the matcher accepts it`);
      continue;
    }
    if (patternProblem(pattern) !== null) {
      disagreements.push(`'${pattern}': the matcher refuses it (${patternProblem(pattern)})`);
      continue;
    }
    const p = new Pattern(pattern);
    for (let j = 0; j < 4; j++) {
      const name = j < 2 ? nameFor(r, pattern) : randomText(r, NAME_CHARS, 8);
      const expected = reference.test(name);
      compared++;
      if (expected) matched++;
      if (p.matches(name) !== expected) disagreements.push(`'${pattern}' vs '${name}': expected ${expected}`);
    }
  }
  assert.equal(disagreements.slice(0, 10), [], `${disagreements.length} disagreement(s), seed ${SEED}`);
  // The generator's own health: both outcomes are well represented.
  assert.ok(matched > compared / 10 && matched < compared * 0.9, `${matched} of ${compared} matched`);
});

test('agrees with the reference on every pattern of up to 4 characters over the specials', () => {
  const alphabet = ['*', '?', '[', ']', '!', '^', '-', 'a', 'z', '\\'];
  const names = ['', 'a', 'z', '-', ']', '[', 'az', 'za', 'a-', '[a', 'a]', '!a', 'a\\', '^', 'aza', '-a-', '[]'];
  const disagreements: string[] = [];
  const walk = (s: string, depth: number): void => {
    let reference: RegExp | null = null;
    try {
      reference = referenceRegExp(s);
    } catch {
      reference = null;
    }
    if ((reference === null) !== (patternProblem(s) !== null)) disagreements.push(`'${s}': validity differs`);
    else if (reference) {
      const p = new Pattern(s);
      for (const n of names) if (p.matches(n) !== reference.test(n)) disagreements.push(`'${s}' vs '${n}'`);
    }
    if (depth > 0) for (const c of alphabet) walk(s + c, depth - 1);
  };
  walk('', 4);
  assert.equal(disagreements.slice(0, 10), [], `${disagreements.length} disagreement(s)`);
});

test.run();
