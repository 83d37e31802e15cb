// One place pauses a connection's stream: fair turns and backpressure each hold it; it reads again when neither does.
import type { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Pauses } from '../../../runtime/broker/pauses.js';
import { SHARE_STEPS, Turns } from '../../../runtime/broker/turns.js';
import { work } from '../../../runtime/protocol/pattern.js';

class Conn {
  state = 'open';
  paused = false;
  pauses = 0;
  resumes = 0;
  readonly stream = {
    pause: () => void ((this.paused = true), this.pauses++),
    resume: () => void ((this.paused = false), this.resumes++),
  } as unknown as Duplex;
}

const nextTurn = () => new Promise((r) => setImmediate(r));

test('a stream is paused by the first reason and resumed when the last goes', () => {
  const p = new Pauses<Conn>();
  const c = new Conn();
  const r1 = {};
  const r2 = {};
  assert.ok(p.pause(c, r1));
  assert.not.ok(p.pause(c, r1), 'the same reason twice counts once');
  assert.ok(p.pause(c, r2));
  assert.is(c.pauses, 1);
  p.resume(c, r1);
  assert.ok(c.paused, 'still held by r2');
  p.resume(c, r1);
  assert.ok(c.paused, 'a reason released twice changes nothing');
  p.resume(c, r2);
  assert.not.ok(c.paused);
  assert.is(c.resumes, 1);
  assert.not.ok(p.held(c));
});

test('a closed connection is forgotten and never resumed', () => {
  const p = new Pauses<Conn>();
  const c = new Conn();
  p.pause(c, 'x');
  c.state = 'closed';
  p.closed(c);
  p.resume(c, 'x');
  assert.is(c.resumes, 0);
});

test('turns do not resume a stream that backpressure still holds, and backpressure does not resume one the turns hold', async () => {
  const p = new Pauses<Conn>();
  const turns = new Turns<Conn, number>((_c, cost) => void (work.steps += cost), p);
  const receiver = {};
  const a = new Conn();
  // Backpressure holds a, then a's costly frame makes the turns hold it too.
  p.pause(a, receiver);
  turns.frame(a, SHARE_STEPS + 1);
  turns.frame(a, 1);
  assert.ok(p.held(a, turns));
  await nextTurn();
  assert.is(turns.waiting, 0, 'its frames were replayed at the next turn');
  assert.ok(a.paused, 'still held by the receiver');
  p.resume(a, receiver);
  assert.not.ok(a.paused);
  // Now the other way round: the turns hold it, the receiver lets go first.
  const b = new Conn();
  turns.frame(b, SHARE_STEPS + 1);
  p.pause(b, receiver);
  p.resume(b, receiver);
  assert.ok(b.paused, 'still held by the turns');
  await nextTurn();
  assert.not.ok(b.paused);
});

test.run();
