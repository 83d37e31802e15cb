// Qt wildcard patterns (SPEC §1): `*`, `?`, `[...]`, everything else literal.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { channelProblem } from '../../../runtime/protocol/names.js';
import { Pattern, compilePattern } from '../../../runtime/protocol/pattern.js';

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

test('compiled patterns are anchored regular expressions', () => {
  const re = compilePattern('a*');
  assert.ok(re instanceof RegExp);
  assert.ok(re.source.startsWith('^') && re.source.endsWith('$'));
});

test('a reversed range `[z-a]` makes the name invalid (EINVAL) instead of throwing anywhere', () => {
  // A listener name travels from any client to the broker: it is refused by the name rules, never thrown on.
  for (const name of ['*[z-a]', 'dev/[9-0]*', '*[*-!]']) {
    assert.match(String(channelProblem(name)), 'not a valid pattern', name);
  }
  // A backslash is an ordinary character, so `[a-\\]` is the range a..\\ reversed too; `\\` alone is fine.
  assert.is(channelProblem('*[\\-a]'), null);
});

test('every short pattern over the special characters compiles', () => {
  const alphabet = ['*', '?', '[', ']', '!', '^', '-', 'a', 'z', '\\'];
  const failures: string[] = [];
  const walk = (s: string, depth: number): void => {
    if (s.includes('*') && channelProblem(s) === null) {
      try {
        compilePattern(s);
      } catch {
        if (failures.length < 5) failures.push(s);
      }
    }
    if (depth > 0) for (const c of alphabet) walk(s + c, depth - 1);
  };
  walk('', 5);
  assert.equal(failures, []);
});

test.run();
