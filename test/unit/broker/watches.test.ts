// Watches and their initial reports: who is told about a name, and what a report spread over slices looks like.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InitialReport, reportInitial } from '../../../runtime/broker/initial-report.js';
import { Registry } from '../../../runtime/broker/registry.js';
import type { Job } from '../../../runtime/broker/turns.js';
import { WatchTable } from '../../../runtime/broker/watches.js';
import { Flag, HEADER_SIZE, Off } from '../../../runtime/protocol/constants.js';

/** A connection that keeps what is pushed to it as readable lines: `+name` / `-name`, `*` when initial, `result`. */
class Conn {
  state = 'open';
  lines: string[] = [];
  push(frame: Buffer): void {
    const flags = frame[Off.Flags]!;
    const name = frame.toString('utf8', HEADER_SIZE, HEADER_SIZE + frame[Off.ChannelLen]!);
    this.lines.push(`${frame.readUInt32LE(Off.Id)}:${flags & Flag.Registered ? '+' : '-'}${name}${flags & Flag.Initial ? '*' : ''}`);
  }
}

function setup(): { reg: Registry<object>; watches: WatchTable<Conn>; holder: object } {
  const watches = new WatchTable<Conn>();
  const reg = new Registry<object>((name, registered, seq) => watches.changed(name, registered, seq));
  return { reg, watches, holder: {} };
}

test('exact watches hear their name only; pattern watches every name they match as text', () => {
  const { reg, watches, holder } = setup();
  const c = new Conn();
  watches.add(c, 1, 'wi/c');
  watches.add(c, 2, 'wi/*');
  watches.add(c, 3, 'wi/[ab]*');
  for (const n of ['wi/c', 'wi/*', 'wi/a', 'other']) reg.add(n, holder);
  assert.equal(c.lines, ['1:+wi/c', '2:+wi/c', '2:+wi/*', '2:+wi/a', '3:+wi/a']);
});

test('watches on the same text share one compiled pattern, and each watch hears each change once', () => {
  const { reg, watches, holder } = setup();
  const c = new Conn();
  const d = new Conn();
  const w1 = watches.add(c, 1, 'a/*');
  const w2 = watches.add(d, 1, 'a/*');
  assert.is(w1.pattern, w2.pattern);
  assert.is(watches.patternCount, 1);
  reg.add('a/x', holder);
  watches.remove(w1);
  reg.remove('a/x', holder);
  assert.equal(c.lines, ['1:+a/x']);
  assert.equal(d.lines, ['1:+a/x', '1:-a/x']);
  watches.remove(w2);
  assert.is(watches.patternCount, 0);
  assert.not.ok(watches.has('a/*'));
});

test('an exact watch reports its name at once when registered, then the result', () => {
  const { reg, watches, holder } = setup();
  reg.add('x', holder);
  const c = new Conn();
  reportInitial(watches.add(c, 5, 'x'), reg, watches.reports, () => assert.unreachable('no job for an exact watch'), () => c.lines.push('result'));
  reportInitial(watches.add(c, 6, 'y'), reg, watches.reports, () => assert.unreachable('no job for an exact watch'), () => c.lines.push('result'));
  assert.equal(c.lines, ['5:+x*', 'result', 'result']);
});

/** Replays a watcher's lines for one watch into the set of names it believes registered. */
function believed(lines: string[], id: number): Set<string> {
  const names = new Set<string>();
  for (const l of lines) {
    const m = /^(\d+):([+-])(.*?)(\*?)$/.exec(l);
    if (!m || Number(m[1]) !== id) continue;
    if (m[2] === '+') {
      assert.not.ok(names.has(m[3]!), `registered twice: ${l}`);
      names.add(m[3]!);
    } else {
      assert.ok(names.has(m[3]!), `unregistered without being registered: ${l}`);
      names.delete(m[3]!);
    }
  }
  return names;
}

test('a report spread over slices gives the snapshot, the result, then the changes made meanwhile', () => {
  const { reg, watches, holder } = setup();
  for (let i = 0; i < 300; i++) reg.add(`n/${i}`, holder);
  const c = new Conn();
  const w = watches.add(c, 9, 'n/*');
  const report = new InitialReport(w, reg, watches.reports, () => c.lines.push('result'));
  let slices = 0;
  while (!report.step(40)) {
    slices++;
    // Meanwhile: a new name, a name already reported going, a name not reached yet going, and coming back.
    const k = slices * 7;
    reg.add(`n/new${slices}`, holder);
    reg.remove(`n/${k % 300}`, holder);
    reg.remove(`n/${299 - slices}`, holder);
    if (slices % 3 === 0) reg.add(`n/${299 - slices}`, holder);
  }
  assert.ok(slices > 3, `${slices} slices`);
  const at = c.lines.indexOf('result');
  assert.ok(at > 0);
  assert.ok(c.lines.slice(0, at).every((l) => l.endsWith('*')), 'only initial events before the result');
  assert.ok(c.lines.slice(at + 1).every((l) => !l.endsWith('*')), 'only changes after it');
  const expected = new Set([...reg.names()].filter((n) => n.startsWith('n/')));
  assert.equal([...believed(c.lines, 9)].sort(), [...expected].sort());
  // Once over, changes go straight out.
  c.lines = [];
  reg.add('n/late', holder);
  assert.equal(c.lines, ['9:+n/late']);
});

test('a report whose connection closed stops without a result', () => {
  const { reg, watches, holder } = setup();
  for (let i = 0; i < 100; i++) reg.add(`n/${i}`, holder);
  const c = new Conn();
  const report = new InitialReport(watches.add(c, 1, '*'), reg, watches.reports, () => c.lines.push('result'));
  assert.not.ok(report.step(10));
  c.state = 'closed';
  assert.ok(report.step(10));
  assert.not.ok(c.lines.includes('result'));
});

test('removing a watch ends its report: no result, no longer told of removals', () => {
  const { reg, watches, holder } = setup();
  for (let i = 0; i < 100; i++) reg.add(`n/${i}`, holder);
  const c = new Conn();
  const w = watches.add(c, 1, '*');
  const report = new InitialReport(w, reg, watches.reports, () => c.lines.push('result'));
  assert.not.ok(report.step(10));
  watches.remove(w);
  assert.is(watches.reports.size, 0);
  assert.is(w.report, null);
  const before = c.lines.length;
  reg.remove('n/99', holder);
  assert.ok(report.step(10));
  assert.is(c.lines.length, before);
});

test('a short report finishes in its first slice', () => {
  const { reg, watches, holder } = setup();
  reg.add('a/1', holder);
  reg.add('b/1', holder);
  const c = new Conn();
  let jobs = 0;
  reportInitial(watches.add(c, 3, 'a/*'), reg, watches.reports, (job) => {
    jobs++;
    assert.ok(job.step(1_000_000));
  }, () => c.lines.push('result'));
  assert.is(jobs, 1);
  assert.equal(c.lines, ['3:+a/1*', 'result']);
});

test('registration events are told in the order they happened, in slices when there are many', () => {
  // A `later` that keeps the job for later turns, as turns.ts does when the turn is spent.
  const jobs: Job[] = [];
  const watches = new WatchTable<Conn>((job) => void jobs.push(job));
  const reg = new Registry<object>((name, registered, seq) => watches.changed(name, registered, seq));
  const holder = {};
  const c = new Conn();
  watches.add(c, 1, 'f/*');
  for (let i = 0; i < 50; i++) reg.add(`f/${i}`, holder);
  for (let i = 0; i < 50; i++) reg.remove(`f/${i}`, holder);
  assert.is(watches.backlog, 100, 'nothing told yet');
  assert.is(jobs.length, 1, 'one job drains the queue');
  // A watch made now: the queued transitions happened before it, its report covers them.
  const late = new Conn();
  reg.add('f/late', holder);
  const w2 = watches.add(late, 2, 'f/*');
  reportInitial(w2, reg, watches.reports, (job) => assert.ok(job.step(1e6)), () => late.lines.push('result'));
  let slices = 1;
  while (!jobs[0]!.step(200)) slices++;
  assert.ok(slices > 5, `${slices} slices`);
  assert.is(watches.backlog, 0);
  const expected = [...Array.from({ length: 50 }, (_, i) => `1:+f/${i}`), ...Array.from({ length: 50 }, (_, i) => `1:-f/${i}`), '1:+f/late'];
  assert.equal(c.lines, expected);
  assert.equal(late.lines, ['2:+f/late*', 'result']);
});

test('a name that goes away before a sliced report reaches it is reported at once, then its removal after the result', () => {
  const { reg, watches, holder } = setup();
  for (let i = 0; i < 200; i++) reg.add(`n/${i}`, holder);
  const c = new Conn();
  const report = new InitialReport(watches.add(c, 4, 'n/1*'), reg, watches.reports, () => c.lines.push('result'));
  assert.not.ok(report.step(5));
  reg.remove('n/199', holder);
  assert.equal(c.lines.at(-1), '4:+n/199*', 'reported as it was when the watch was made');
  while (!report.step(5));
  const at = c.lines.indexOf('result');
  assert.equal(c.lines.slice(at), ['result', '4:-n/199']);
  assert.is(c.lines.filter((l) => l === '4:+n/199*').length, 1);
});

test.run();
