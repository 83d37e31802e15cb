// Fair turns: a connection over its share waits for the next turn, frames in order; jobs go first.
import type { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SHARE_STEPS, TURN_STEPS, Turns, type Job } from '../../../runtime/broker/turns.js';
import { work } from '../../../runtime/protocol/pattern.js';

class Conn {
  state = 'open';
  paused = false;
  readonly stream = { pause: () => void (this.paused = true), resume: () => void (this.paused = false) } as unknown as Duplex;
  constructor(readonly name: string) {}
}

/** Frames are [name, cost]; dispatching one records it and spends its cost. */
function setup(): { turns: Turns<Conn, number>; log: string[] } {
  const log: string[] = [];
  const turns = new Turns<Conn, number>((c, cost) => {
    log.push(`${c.name}${log.filter((l) => l.startsWith(c.name)).length}`);
    work.steps += cost;
  });
  return { turns, log };
}

const nextTurn = () => new Promise((r) => setImmediate(r));

test('frames within the share are handled at once', () => {
  const { turns, log } = setup();
  const a = new Conn('a');
  for (let i = 0; i < 10; i++) turns.frame(a, 10);
  assert.equal(log.length, 10);
  assert.not.ok(a.paused);
  assert.is(turns.waiting, 0);
});

test('past its share a connection waits for the next turn, paused, its frames in order; others go on', async () => {
  const { turns, log } = setup();
  const a = new Conn('a');
  const b = new Conn('b');
  turns.frame(a, SHARE_STEPS + 1);
  turns.frame(a, 1);
  turns.frame(a, 1);
  turns.frame(b, 1);
  assert.equal(log, ['a0', 'b0']);
  assert.ok(a.paused);
  assert.not.ok(b.paused);
  await nextTurn();
  assert.equal(log, ['a0', 'b0', 'a1', 'a2']);
  assert.not.ok(a.paused);
  assert.is(turns.waiting, 0);
});

test('a queue longer than a share is replayed over several turns, in order', async () => {
  const { turns, log } = setup();
  const a = new Conn('a');
  const cost = SHARE_STEPS / 4;
  for (let i = 0; i < 12; i++) turns.frame(a, cost);
  let rounds = 0;
  while (turns.waiting > 0 && rounds < 20) {
    await nextTurn();
    rounds++;
  }
  assert.equal(log, Array.from({ length: 12 }, (_, i) => `a${i}`));
  assert.ok(rounds >= 2, `${rounds} turns`);
  assert.not.ok(a.paused);
});

test('a job runs over turns ahead of the frames that came after it', async () => {
  const { turns, log } = setup();
  const a = new Conn('a');
  let slices = 0;
  const job: Job = {
    step(budget) {
      slices++;
      work.steps += Math.min(budget, SHARE_STEPS);
      return slices === 3;
    },
  };
  turns.run(a, job);
  turns.frame(a, 1);
  assert.equal(log, []);
  assert.ok(a.paused);
  while (turns.waiting > 0) await nextTurn();
  assert.is(slices, 3);
  assert.equal(log, ['a0']);
  assert.not.ok(a.paused);
});

test('a closed connection is forgotten with its queue', async () => {
  const { turns, log } = setup();
  const a = new Conn('a');
  turns.frame(a, SHARE_STEPS + 1);
  turns.frame(a, 1);
  a.state = 'closed';
  turns.closed(a);
  await nextTurn();
  assert.equal(log, ['a0']);
  assert.is(turns.waiting, 0);
});

test('when the turn is spent, any connection with costly work waits; free frames still go through', async () => {
  const { turns, log } = setup();
  const conns = Array.from({ length: 6 }, (_, i) => new Conn(String.fromCharCode(97 + i)));
  for (const c of conns) turns.frame(c, SHARE_STEPS - 1);
  assert.equal(log, ['a0', 'b0', 'c0', 'd0', 'e0', 'f0']);
  const over = conns.filter((c) => c.paused).map((c) => c.name);
  assert.equal(over, ['e', 'f'], 'past the turn total of ' + TURN_STEPS);
  const g = new Conn('g');
  turns.frame(g, 0);
  assert.not.ok(g.paused, 'a frame that costs nothing is never held');
  while (turns.waiting > 0) await nextTurn();
  assert.ok(conns.every((c) => !c.paused));
});

test('background work runs over turns, at most half of each, and waiting connections still move', async () => {
  const { turns, log } = setup();
  let slices = 0;
  turns.later({
    step(budget) {
      slices++;
      work.steps += budget;
      return slices === 8;
    },
  });
  const a = new Conn('a');
  turns.frame(a, SHARE_STEPS + 1);
  turns.frame(a, 1);
  await nextTurn();
  assert.equal(log, ['a0', 'a1'], 'the connection went on in the first turn after');
  while (turns.waiting > 0) await nextTurn();
  assert.is(slices, 8);
});

test.run();
