// The listener table: who receives a message on a channel, and when a listener name is (un)registered.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { channelProblem } from '../../../runtime/protocol/names.js';
import { Registry } from '../../../runtime/broker/registry.js';
import { work } from '../../../runtime/protocol/pattern.js';

interface R {
  name: string;
}

function setup(): { reg: Registry<R>; events: string[]; a: R; b: R; c: R } {
  const events: string[] = [];
  const reg = new Registry<R>((name, registered) => events.push(`${registered ? '+' : '-'}${name}`));
  return { reg, events, a: { name: 'a' }, b: { name: 'b' }, c: { name: 'c' } };
}

const names = (rs: R[]) => rs.map((r) => r.name).sort();

// [listener names per receiver, channel, receivers expected]
const ROUTES: Array<[string, Record<string, string[]>, string, string[]]> = [
  ['nobody listens', {}, 'x', []],
  ['an exact listener', { a: ['x'] }, 'x', ['a']],
  ['an exact listener on another channel', { a: ['y'] }, 'x', []],
  ['a pattern listener', { a: ['QPE/*'] }, 'QPE/Application/x', ['a']],
  ['exact and pattern of one receiver: once', { a: ['QPE/System', 'QPE/*', '*', 'QPE/Sys*'] }, 'QPE/System', ['a']],
  ['several patterns of one receiver: once', { a: ['*', 'a*', '*b', 'a?b*'] }, 'a/b', ['a']],
  ['two receivers on the same name', { a: ['x'], b: ['x'] }, 'x', ['a', 'b']],
  ['one exact, one pattern', { a: ['x/y'], b: ['x/*'] }, 'x/y', ['a', 'b']],
  ['a pattern that does not match', { a: ['x/*'], b: ['y/*'] }, 'x/1', ['a']],
  ['an exact name containing ? is literal', { a: ['a?c'] }, 'abc', []],
  ['an exact name containing ? matches itself', { a: ['a?c'] }, 'a?c', ['a']],
  ['three receivers, overlapping', { a: ['*'], b: ['s/*', 's/1'], c: ['s/1'] }, 's/1', ['a', 'b', 'c']],
];

for (const [what, table, channel, expected] of ROUTES) {
  test(`route: ${what}`, () => {
    const { reg, a, b, c } = setup();
    const byName: Record<string, R> = { a, b, c };
    for (const [r, list] of Object.entries(table)) for (const n of list) reg.add(n, byName[r]!);
    const got = reg.route(channel);
    assert.equal(names(got), expected);
    assert.is(new Set(got).size, got.length, 'each receiver once');
  });
}

test('a name becomes registered with its first receiver and unregistered with its last, reported once', () => {
  const { reg, events, a, b } = setup();
  reg.add('x', a);
  reg.add('x', b);
  reg.add('x', a);
  reg.remove('x', a);
  reg.remove('x', a);
  reg.remove('x', b);
  reg.remove('x', b);
  assert.equal(events, ['+x', '-x']);
});

test('a pattern is registered as its own text, apart from the channels it matches', () => {
  const { reg, events, a, b } = setup();
  reg.add('QPE/*', a);
  reg.add('QPE/System', b);
  reg.add('QPE/*', b);
  reg.remove('QPE/*', a);
  reg.remove('QPE/*', b);
  assert.equal(events, ['+QPE/*', '+QPE/System', '-QPE/*']);
  assert.ok(reg.has('QPE/System'));
  assert.not.ok(reg.has('QPE/*'));
});

test('add and remove tell whether anything changed for that receiver', () => {
  const { reg, a } = setup();
  assert.is(reg.add('x', a), true);
  assert.is(reg.add('x', a), false);
  assert.is(reg.remove('x', a), true);
  assert.is(reg.remove('x', a), false);
  assert.is(reg.remove('never', a), false);
  assert.is(reg.remove('never/*', a), false);
});

test('names() lists exact names and patterns; size counts them', () => {
  const { reg, a, b } = setup();
  reg.add('x', a);
  reg.add('x', b);
  reg.add('y/*', a);
  assert.equal([...reg.names()].sort(), ['x', 'y/*']);
  assert.is(reg.size, 2);
  reg.remove('x', a);
  assert.is(reg.size, 2);
  reg.remove('x', b);
  assert.equal([...reg.names()], ['y/*']);
  assert.is(reg.size, 1);
});

const CACHE_STEPS: Array<[string, (s: ReturnType<typeof setup>) => void, string[]]> = [
  ['an exact listener added after a route', (s) => s.reg.add('c/1', s.b), ['a', 'b']],
  ['a pattern listener added after a route', (s) => s.reg.add('c/*', s.b), ['a', 'b']],
  ['the only listener removed after a route', (s) => s.reg.remove('c/1', s.a), []],
  ['a matching pattern removed after a route', (s) => (s.reg.add('*', s.b), s.reg.route('c/1'), s.reg.remove('*', s.b)), ['a']],
  ['a receiver holding exact and pattern drops the exact one', (s) => (s.reg.add('c/*', s.a), s.reg.route('c/1'), s.reg.remove('c/1', s.a)), ['a']],
  ['a receiver holding exact and pattern drops both', (s) => (s.reg.add('c/*', s.a), s.reg.route('c/1'), s.reg.remove('c/1', s.a), s.reg.remove('c/*', s.a)), []],
];

for (const [what, change, expected] of CACHE_STEPS) {
  test(`the route cache follows changes: ${what}`, () => {
    const s = setup();
    s.reg.add('c/1', s.a);
    assert.equal(names(s.reg.route('c/1')), ['a']);
    change(s);
    assert.equal(names(s.reg.route('c/1')), expected);
  });
}

test('a route answered from the cache is the same as a fresh one over many channels', () => {
  const { reg, a, b } = setup();
  reg.add('k/*', a);
  for (let i = 0; i < 5000; i++) reg.route(`k/${i}`);
  reg.add('k/4999', b);
  assert.equal(names(reg.route('k/4999')), ['a', 'b']);
  assert.equal(names(reg.route('k/0')), ['a']);
});

test('route results handed out earlier are not changed by later registrations', () => {
  const { reg, a, b } = setup();
  reg.add('x', a);
  const first = reg.route('x');
  reg.add('x', b);
  assert.equal(names(first), ['a']);
  assert.equal(names(reg.route('x')), ['a', 'b']);
});

test('transitions carry the registration number: later names have higher ones, a name keeps its own until it goes', () => {
  const seqs: Array<[string, boolean, number]> = [];
  const reg = new Registry<R>((name, registered, seq) => seqs.push([name, registered, seq]));
  const a = { name: 'a' };
  reg.add('x', a);
  reg.add('y/*', a);
  reg.remove('x', a);
  reg.add('x', a);
  assert.equal(seqs.map(([n, r]) => `${r ? '+' : '-'}${n}`), ['+x', '+y/*', '-x', '+x']);
  assert.ok(seqs[1]![2] > seqs[0]![2]);
  assert.is(seqs[2]![2], seqs[0]![2], 'unregistered with the number it was registered with');
  assert.ok(seqs[3]![2] > seqs[1]![2], 'registered again: a new number');
  assert.is(reg.lastSeq, seqs[3]![2]);
  assert.equal([...reg.registered()].map((e) => e.name), ['y/*', 'x']);
});

test('a cached route costs nothing, and registrations elsewhere leave it cached', () => {
  const { reg, a, b } = setup();
  reg.add('feed', a);
  reg.route('feed');
  let before = work.steps;
  reg.add('other/*', b);
  reg.add('other/x', b);
  reg.remove('other/*', b);
  const cost = work.steps - before;
  before = work.steps;
  assert.equal(names(reg.route('feed')), ['a']);
  assert.is(work.steps - before, 0, 'still cached');
  assert.ok(cost < 20, `${cost} steps`);
});

test('registering a listener costs the same with 16,384 names registered as with none', () => {
  const cost = (registered: number): number => {
    const { reg, a, b } = setup();
    for (let i = 0; i < registered; i++) reg.add(i % 4 ? `n/${i}` : `p/${i}/*`, a);
    const before = work.steps;
    reg.add('new/*', b);
    reg.add('new/x', b);
    reg.remove('new/*', b);
    reg.remove('new/x', b);
    return work.steps - before;
  };
  assert.is(cost(16_384), cost(0));
});

test('a reversed-range pattern never reaches the registry: the name rules refuse it first', () => {
  // The broker validates every listener name (handlers.ts channelOf) before Registry.add sees it.
  assert.match(String(channelProblem('*[z-a]')), 'not a valid pattern');
  const { reg, b } = setup();
  reg.add('x', b);
  assert.equal(names(reg.route('x')), ['b']);
});

test.run();
