// The shared name index: what a text reaches, in which order, what the cache keeps, and what a change costs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NameIndex, type IndexEntry } from '../../../runtime/protocol/name-index.js';
import { work } from '../../../runtime/protocol/pattern.js';

/** An index whose lookups list the names reached, exact first; `derived` counts fresh derivations. */
function setup(cacheLimit = 4096): { index: NameIndex<string, string[]>; derived: () => number } {
  let n = 0;
  const index = new NameIndex<string, string[]>((exact, patterns) => {
    n++;
    return [...(exact ? [exact.name] : []), ...patterns.map((p) => p.name)];
  }, { cacheLimit, byPrefix: true });
  return { index, derived: () => n };
}

const costOf = (f: () => void): number => {
  const before = work.steps;
  f();
  return work.steps - before;
};

// [names registered in this order, text, names reached]
const LOOKUPS: Array<[string, string[], string, string[]]> = [
  ['nothing registered', [], 'a/b', []],
  ['an exact name', ['a/b'], 'a/b', ['a/b']],
  ['a pattern under another prefix', ['x/*'], 'a/b', []],
  ['exact first, then patterns in registration order', ['*', 'a/*', 'a/b', 'a?b*', '*/b', 'b*'], 'a/b', ['a/b', '*', 'a/*', 'a?b*', '*/b']],
  ['registration order across prefix buckets', ['a/b/*', 'a/*', '*b', 'a/b*'], 'a/b', ['a/*', '*b', 'a/b*']],
  ['a prefix longer than the bucket key', ['abcdefghijklmnopqrstu/*', 'abcdefghijklmnopqrstx/*'], 'abcdefghijklmnopqrstu/1', ['abcdefghijklmnopqrstu/*']],
  ['a name shorter than the bucket key', ['ab*', 'abc*'], 'ab', ['ab*']],
  ['a text that is itself a pattern is matched as text', ['wi/*', 'wi/?*', 'wi/[ab]*'], 'wi/*', ['wi/*', 'wi/?*']],
  ['a pattern that does not match its own text', ['[ab]*'], '[ab]*', []],
  ['non-ASCII prefixes', ['ünï/*', 'ün*', '😀/*'], 'ünï/cödé', ['ünï/*', 'ün*']],
];

for (const [what, names, text, expected] of LOOKUPS) {
  test(`lookup: ${what}`, () => {
    const { index } = setup();
    for (const n of names) index.add(n, n);
    assert.equal(index.lookup(text), expected);
    assert.equal(index.matching(text).map((e) => e.name), expected.filter((n) => n.includes('*')));
  });
}

test('a name deleted and added again comes last in registration order', () => {
  const { index } = setup();
  for (const n of ['a*', 'ab*', 'abc*']) index.add(n, n);
  index.delete('a*');
  index.add('a*', 'a*');
  assert.equal(index.lookup('abcd'), ['ab*', 'abc*', 'a*']);
  assert.equal([...index.names()], ['ab*', 'abc*', 'a*']);
  assert.ok(index.get('a*')!.seq > index.get('abc*')!.seq);
});

test('size, patternCount and lastSeq follow additions and deletions', () => {
  const { index } = setup();
  index.add('x', 'x');
  index.add('y/*', 'y');
  assert.is(index.size, 2);
  assert.is(index.patternCount, 1);
  const seq = index.lastSeq;
  assert.is(index.delete('y/*')!.name, 'y/*');
  assert.is(index.delete('y/*'), undefined);
  assert.is(index.patternCount, 0);
  assert.is(index.lastSeq, seq, 'a deletion takes no number');
});

// Each change, after lookups of 'c/1' and 'd/1' were cached: which of the two are derived again.
const INVALIDATIONS: Array<[string, (i: NameIndex<string, string[]>) => void, string[]]> = [
  ['an exact name added on one channel', (i) => i.add('c/1', 'c/1'), ['c/1']],
  ['an exact name removed', (i) => i.delete('c/0'), []],
  ['the value of an exact entry changed', (i) => i.changed(i.get('d/1')!), ['d/1']],
  ['a pattern added that matches one', (i) => i.add('c/*', 'c/*'), ['c/1']],
  ['a pattern added that matches both', (i) => i.add('?/1*', '?/1*'), ['c/1', 'd/1']],
  ['a pattern added that matches none', (i) => i.add('e/*', 'e/*'), []],
  ['a pattern removed that one included', (i) => i.delete('d*'), ['d/1']],
  ['the value of a pattern changed', (i) => i.changed(i.get('*1')!), ['c/1', 'd/1']],
];

for (const [what, change, again] of INVALIDATIONS) {
  test(`the cache drops exactly what a change affects: ${what}`, () => {
    const { index, derived } = setup();
    for (const n of ['c/0', 'd/1', 'd*', '*1']) index.add(n, n);
    index.lookup('c/1');
    index.lookup('d/1');
    change(index);
    const before = derived();
    const redone: string[] = [];
    for (const t of ['c/1', 'd/1']) {
      const n = derived();
      index.lookup(t);
      if (derived() > n) redone.push(t);
    }
    assert.equal(redone, again);
    assert.is(derived() - before, again.length);
  });
}

test('lookups handed out earlier are not changed by later registrations', () => {
  const { index } = setup();
  index.add('x', 'x');
  const first = index.lookup('x');
  index.add('*', '*');
  assert.equal(first, ['x']);
  assert.equal(index.lookup('x'), ['x', '*']);
});

test('the cache is bounded: the oldest text goes first, and stays correct when asked again', () => {
  const { index, derived } = setup(3);
  index.add('k/*', 'k/*');
  for (const t of ['k/1', 'k/2', 'k/3', 'k/4']) index.lookup(t);
  const n = derived();
  index.lookup('k/4');
  assert.is(derived(), n, 'k/4 is cached');
  index.lookup('k/1');
  assert.is(derived(), n + 1, 'k/1 was evicted');
  index.delete('k/*');
  assert.equal(index.lookup('k/4'), [], 'an evicted or kept text is derived again after its pattern went');
});

test('without a cache every lookup derives afresh', () => {
  const { index, derived } = setup(0);
  index.add('a*', 'a*');
  index.lookup('ab');
  index.lookup('ab');
  assert.is(derived(), 2);
});

test('registering costs the same whether 16 or 16,384 names are registered', () => {
  const cost = (registered: number): number => {
    const { index } = setup();
    for (let i = 0; i < registered; i++) index.add(i % 2 ? `n/${i}` : `p/${i}/*`, '');
    index.lookup('q/1');
    return costOf(() => {
      index.add('q/*', '');
      index.add('q/x', '');
      index.delete('q/*');
    });
  };
  assert.is(cost(16_384), cost(16));
});

test('a lookup only tries the patterns whose literal prefix the text starts with', () => {
  const { index } = setup();
  for (let i = 0; i < 4000; i++) index.add(`fill/${i}/*`, '');
  index.add('bench/pi*', '');
  const steps = costOf(() => assert.equal(index.lookup('bench/ping'), ['bench/pi*']));
  assert.ok(steps < 40, `${steps} steps`);
});

test('names under a prefix: only those filed under its first 4, 8 or 16 code units are visited, in order', () => {
  const { index } = setup();
  for (const n of ['QPE/System', 'QPE/Application/x', 'other/x', 'QP', 'sensors/imu/0', 'sensors/imu/1', 'sensors/gps/0', 'QPE/*']) index.add(n, n);
  const under = (p: string) => [...index.valuesUnder(p)].map((e) => e.name);
  assert.equal(under('QPE/'), ['QPE/System', 'QPE/Application/x', 'QPE/*']);
  assert.equal(under('sensors/imu/'), ['sensors/imu/0', 'sensors/imu/1', 'sensors/gps/0'], 'filed under the 8-unit head sensors/');
  assert.equal(under('Q'), [...index.names()], 'a short prefix visits everything');
  assert.equal(under('none/'), []);
  index.delete('QPE/System');
  assert.equal(under('QPE/'), ['QPE/Application/x', 'QPE/*']);
});

test('entries keep the values they were given and changes to them are seen by the next derivation', () => {
  const index = new NameIndex<Set<number>, number[]>((exact, patterns) => [...(exact?.value ?? []), ...patterns.flatMap((p: IndexEntry<Set<number>>) => [...p.value])]);
  const e = index.add('a/*', new Set([1]));
  assert.equal(index.lookup('a/b'), [1]);
  e.value.add(2);
  index.changed(e);
  assert.equal(index.lookup('a/b'), [1, 2]);
});

test.run();
