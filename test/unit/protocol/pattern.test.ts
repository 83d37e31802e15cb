// Qt wildcard patterns (SPEC §1): `*`, `?`, `[...]`, everything else literal.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { channelProblem } from '../../../runtime/protocol/names.js';
import { Pattern, patternProblem, work } from '../../../runtime/protocol/pattern.js';

// [pattern, name, matches]
const CASES: Array<[string, string, boolean]> = [
  // `*` is any run of characters, `/` included (SPEC §1: QPE/* matches QPE/Application/x).
  ['QPE/*', 'QPE/Application/x', true],
  ['QPE/*', 'QPE/System', true],
  ['QPE/*', 'QPE/', true],
  ['QPE/*', 'QPE', false],
  ['QPE/*', 'QPEX/System', false],
  ['QPE/*', 'xQPE/System', false],
  ['*', 'anything/at/all', true],
  ['*', '', true],
  ['*/x', 'a/b/c/x', true],
  ['*/x', 'a/b/c/xy', false],
  ['a*b*c', 'a/b/c', true],
  ['a*b*c', 'abbbbc', true],
  ['a*b*c', 'acb', false],
  ['a**b', 'a/x/b', true],
  // `?` is exactly one character, `/` included.
  ['a?c', 'abc', true],
  ['a?c', 'a/c', true],
  ['a?c', 'ac', false],
  ['a?c', 'abbc', false],
  ['a?c*', 'a😀c', true],
  ['a?c*', 'a😀😀c', false],
  ['*[😀-😂]', 'x😁', true],
  ['*[😀-😂]', 'x😃', false],
  ['*[!😀]', 'x😀', false],
  ['*?', '😀', true],
  ['??*', '😀', false],
  ['a?c*', 'aéc/x', true],
  ['??*', 'a', false],
  ['??*', 'ab', true],
  // sets
  ['dev/[abc]*', 'dev/a0', true],
  ['dev/[abc]*', 'dev/c', true],
  ['dev/[abc]*', 'dev/d', false],
  ['dev/[a-z]*', 'dev/q', true],
  ['dev/[a-z]*', 'dev/Q', false],
  ['dev/[a-z]*', 'dev/-', false],
  ['dev/[0-9a-f]*', 'dev/e', true],
  ['dev/[!a]*', 'dev/b', true],
  ['dev/[!a]*', 'dev/a', false],
  ['dev/[^a]*', 'dev/b', true],
  ['dev/[^a]*', 'dev/a', false],
  ['dev/[!a-c]*', 'dev/d', true],
  ['dev/[!a-c]*', 'dev/b', false],
  ['*[]a]', 'x]', true],
  ['*[]a]', 'xa', true],
  ['*[]a]', 'xb', false],
  ['*[!]a]', 'xb', true],
  ['*[!]a]', 'x]', false],
  ['*[-a]', 'x-', true],
  ['*[a-]', 'x-', true],
  ['*[a-]', 'xb', false],
  ['*[/]x', 'a/x', true],
  ['*[?]', 'x?', true],
  ['*[?]', 'xy', false],
  ['*[*]', 'x*', true],
  ['*[*]', 'xy', false],
  ['*[\\]', 'x\\', true],
  ['*[.]', 'x.', true],
  ['*[.]', 'xy', false],
  // an unclosed `[` is a literal character
  ['a[b*', 'a[bc', true],
  ['a[b*', 'abc', false],
  ['*[', 'x[', true],
  ['*[!', 'x[!', true],
  ['*[]', 'x[]', true],
  // regular-expression metacharacters are literal
  ['a.b*', 'a.bc', true],
  ['a.b*', 'axbc', false],
  ['a+*', 'a+', true],
  ['a+*', 'aa', false],
  ['f(x)*', 'f(x)', true],
  ['f(x)*', 'fx', false],
  ['a$*', 'a$b', true],
  ['^a*', '^ab', true],
  ['^a*', 'ab', false],
  ['a{2}*', 'a{2}', true],
  ['a{2}*', 'aa', false],
  ['a|b*', 'a|b', true],
  ['a|b*', 'a', false],
  ['a\\d*', 'a\\d', true],
  ['a\\d*', 'a1', false],
  ['tst_QcopChannel::*()', 'tst_QcopChannel::send()', true],
  // anchoring: the whole name must match
  ['b*', 'ab', false],
  ['*a', 'ab', false],
];

for (const [pattern, name, expected] of CASES) {
  test(`'${pattern}' ${expected ? 'matches' : 'does not match'} '${name}'`, () => {
    assert.is(new Pattern(pattern).matches(name), expected);
  });
}

test('a Pattern keeps its source text', () => {
  assert.is(new Pattern('QPE/*').source, 'QPE/*');
});

test('a reversed range `[z-a]` makes the name invalid (EINVAL) instead of throwing anywhere', () => {
  // A listener name travels from any client to the broker: it is refused by the name rules, never thrown on.
  for (const name of ['*[z-a]', 'dev/[9-0]*', '*[*-!]']) {
    assert.match(String(channelProblem(name)), 'not a valid pattern', name);
  }
  // A backslash is an ordinary character, so `[a-\\]` is the range a..\\ reversed too; `\\` alone is fine.
  assert.is(channelProblem('*[\\-a]'), null);
});

test('every short pattern over the special characters that the name rules accept compiles', () => {
  const alphabet = ['*', '?', '[', ']', '!', '^', '-', 'a', 'z', '\\'];
  const failures: string[] = [];
  const walk = (s: string, depth: number): void => {
    if (s.includes('*') && channelProblem(s) === null) {
      try {
        new Pattern(s).matches('az');
      } catch {
        if (failures.length < 5) failures.push(s);
      }
      if (patternProblem(s) !== null && failures.length < 5) failures.push(s);
    }
    if (depth > 0) for (const c of alphabet) walk(s + c, depth - 1);
  };
  walk('', 5);
  assert.equal(failures, []);
});

test('a literal Pattern matches only its own text, wildcard characters included', () => {
  const p = Pattern.literal('a?[b]*');
  assert.ok(p.matches('a?[b]*'));
  assert.not.ok(p.matches('ax[b]*'));
  assert.not.ok(p.matches('a?b'));
});

/** Steps one match takes (protocol/pattern.ts counts them: cost is counted, never timed). */
function steps(pattern: string, name: string): { matched: boolean; steps: number } {
  const p = new Pattern(pattern);
  const before = work.steps;
  const matched = p.matches(name);
  return { matched, steps: work.steps - before };
}

// Inputs that make a backtracking matcher explode; each must stay within O(len(pattern) × len(name)) (SPEC §8).
const HOSTILE: Array<[string, string, boolean]> = [
  ['*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(120), false],
  ['*a'.repeat(20) + '*b', 'a'.repeat(255), false],
  ['*a'.repeat(20) + '*', 'a'.repeat(255), true],
  ['*a'.repeat(19) + '*b*', 'a'.repeat(255), false],
  ['*' + 'a'.repeat(126) + 'b*', 'a'.repeat(255), false],
  ['*' + '[a-c]'.repeat(50) + 'b*', 'a'.repeat(255), false],
  ['*' + 'a?'.repeat(120) + 'b*', 'a'.repeat(255), false],
  ['*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*x*', 'y'.repeat(255), false],
  ['*é*é*é*é*é*é*é*é*é*ë*', 'é'.repeat(127), false],
];

for (const [pattern, name, expected] of HOSTILE) {
  test(`hostile: '${pattern.slice(0, 24)}…' against ${name.length} characters costs at most len(pattern) × len(name) steps`, () => {
    const { matched, steps: n } = steps(pattern, name);
    assert.is(matched, expected);
    const bound = (Array.from(pattern).length + 1) * (Array.from(name).length + 1);
    assert.ok(n <= bound, `${n} steps, bound ${bound}`);
  });
}

test('a pattern with 20 stars against a 255-byte channel takes a few thousand steps, not millions', () => {
  // The bit-parallel middle: one pass over the name, a word of state per character.
  assert.ok(steps('*a'.repeat(20) + '*b*', 'a'.repeat(255)).steps < 2000);
  assert.ok(steps('*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(120)).steps < 200);
});

test('the common shapes cost one step: a literal prefix and a final star, a plain literal', () => {
  assert.is(steps('QPE/*', 'QPE/Application/x').steps, 1);
  const p = Pattern.literal('QPE/System');
  const before = work.steps;
  assert.ok(p.matches('QPE/System'));
  assert.is(work.steps - before, 1);
});

test.run();
