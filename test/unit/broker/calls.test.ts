// Calls in flight: first reply wins, later ones are late, unknown ones are refused, a call nobody can answer is reported once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CallTable, type Call } from '../../../runtime/broker/calls.js';

interface C {
  name: string;
}

const caller: C = { name: 'caller' };
const r1: C = { name: 'r1' };
const r2: C = { name: 'r2' };
const stranger: C = { name: 'stranger' };

function table(): { calls: CallTable<C>; expired: Call<C>[] } {
  const expired: Call<C>[] = [];
  return { calls: new CallTable<C>((c) => expired.push(c)), expired };
}

const LONG = 60_000;

test('call ids are non-zero and distinct', () => {
  const { calls } = table();
  const ids = Array.from({ length: 100 }, () => calls.start(caller, 1, 'x', [r1], LONG).id);
  assert.ok(ids.every((id) => id > 0));
  assert.is(new Set(ids).size, 100);
  calls.clear();
});

test('the first reply wins; a second receiver is told it was not first', () => {
  const { calls } = table();
  const call = calls.start(caller, 7, 'x', [r1, r2], LONG);
  const a = calls.reply(r1, call.id);
  const b = calls.reply(r2, call.id);
  assert.ok(typeof a === 'object' && a.first && a.call.requestId === 7);
  assert.ok(typeof b === 'object' && !b.first);
  assert.is(calls.size, 0, 'finished once every receiver answered');
});

// [what, act, expected verdict]
const VERDICTS: Array<[string, (calls: CallTable<C>, id: number) => unknown, string]> = [
  ['the same receiver replying twice', (t, id) => (t.reply(r1, id), t.reply(r1, id)), 'late'],
  ['a connection the call was not sent to', (t, id) => t.reply(stranger, id), 'unknown'],
  ['call id 0', (t) => t.reply(r1, 0), 'unknown'],
  ['a call id never issued', (t, id) => t.reply(r1, id + 1000), 'unknown'],
  ['a receiver after the call finished', (t, id) => (t.reply(r1, id), t.reply(r2, id), t.reply(r2, id)), 'late'],
  ['a receiver that declined, then replies', (t, id) => (t.decline(r1, id), t.reply(r1, id)), 'late'],
];

for (const [what, act, expected] of VERDICTS) {
  test(`a reply by ${what} is '${expected}'`, () => {
    const { calls } = table();
    const call = calls.start(caller, 1, 'x', [r1, r2], LONG);
    assert.is(act(calls, call.id), expected);
    calls.clear();
  });
}

test('a call is unanswerable when the last waiting receiver declines', () => {
  const { calls } = table();
  const call = calls.start(caller, 1, 'x', [r1, r2], LONG);
  assert.is(calls.decline(r1, call.id), null);
  assert.is(calls.decline(r2, call.id), call);
  assert.is(calls.size, 0);
});

test('a decline after an answer does not make the call unanswerable', () => {
  const { calls } = table();
  const call = calls.start(caller, 1, 'x', [r1, r2], LONG);
  calls.reply(r1, call.id);
  assert.is(calls.decline(r2, call.id), null);
});

test('a decline by a stranger or for an unknown call changes nothing', () => {
  const { calls } = table();
  const call = calls.start(caller, 1, 'x', [r1], LONG);
  assert.is(calls.decline(stranger, call.id), null);
  assert.is(calls.decline(r1, call.id + 1), null);
  assert.is(calls.size, 1);
  calls.clear();
});

test('the caller going away forgets its calls without reporting them', () => {
  const { calls } = table();
  calls.start(caller, 1, 'x', [r1], LONG);
  assert.equal(calls.dropConnection(caller), []);
  assert.is(calls.size, 0);
});

test('the last receiver going away reports the call once', () => {
  const { calls } = table();
  const call = calls.start(caller, 1, 'x', [r1, r2], LONG);
  assert.equal(calls.dropConnection(r1), []);
  assert.equal(calls.dropConnection(r2), [call]);
  assert.equal(calls.dropConnection(r2), []);
});

test('a receiver going away after answering leaves nothing to report', () => {
  const { calls } = table();
  const call = calls.start(caller, 1, 'x', [r1, r2], LONG);
  calls.reply(r1, call.id);
  assert.equal(calls.dropConnection(r2), []);
});

test('a call already reported unanswerable is not reported again by giveUp', () => {
  // The broker's call handler gives up on a receiver whose delivery failed; when that failure
  // closed the receiver (slowConsumer 'disconnect'), dropConnection has already reported the call.
  const { calls } = table();
  const call = calls.start(caller, 1, 'x', [r1], LONG);
  assert.equal(calls.dropConnection(r1), [call]);
  assert.is(calls.giveUp(call, r1), false, 'reported twice: the caller would get two ENOLISTENER errors');
});

test('giveUp on the same receiver twice reports the call once', () => {
  const { calls } = table();
  const call = calls.start(caller, 1, 'x', [r1], LONG);
  assert.is(calls.giveUp(call, r1), true);
  assert.is(calls.giveUp(call, r1), false);
});

test('an unanswered call expires after its timeout, once', async () => {
  const { calls, expired } = table();
  const call = calls.start(caller, 9, 'x', [r1], 20);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(expired, [call]);
  assert.is(calls.size, 0);
  assert.is(calls.reply(r1, call.id), 'late');
});

test('an answered call expires without being reported as unanswered', async () => {
  const { calls, expired } = table();
  const call = calls.start(caller, 9, 'x', [r1, r2], 20);
  calls.reply(r1, call.id);
  await new Promise((r) => setTimeout(r, 80));
  assert.is(expired.length, 1);
  assert.is(expired[0]!.answered, true);
});

test('clear() forgets every call and cancels the timers', async () => {
  const { calls, expired } = table();
  calls.start(caller, 1, 'x', [r1], 20);
  calls.clear();
  await new Promise((r) => setTimeout(r, 60));
  assert.is(calls.size, 0);
  assert.equal(expired, []);
});

test('calls in flight are counted per caller, and each way a call ends counts it out', async () => {
  const { calls } = table();
  const other: C = { name: 'other' };
  const answered = calls.start(caller, 1, 'x', [r1], LONG);
  const declined = calls.start(caller, 2, 'x', [r1], LONG);
  calls.start(caller, 3, 'x', [r2], 20);
  calls.start(other, 4, 'x', [r1], LONG);
  assert.equal([calls.inFlight(caller), calls.inFlight(other), calls.inFlight(stranger)], [3, 1, 0]);
  calls.reply(r1, answered.id);
  calls.decline(r1, declined.id);
  assert.is(calls.inFlight(caller), 1);
  await new Promise((r) => setTimeout(r, 80));
  assert.is(calls.inFlight(caller), 0, 'expired');
  calls.dropConnection(other);
  assert.equal([calls.inFlight(other), calls.size], [0, 0]);
});

test('a receiver going away ends exactly the calls it was asked, among many pending', () => {
  const { calls } = table();
  const many = Array.from({ length: 1000 }, (_, i) => ({ name: `c${i}` }));
  for (const c of many) calls.start(c, 1, 'x', [r2], LONG);
  const mine = calls.start(caller, 1, 'x', [r1], LONG);
  assert.equal(calls.dropConnection(r1), [mine]);
  assert.is(calls.size, 1000);
  assert.is(calls.dropConnection(r2).length, 1000);
  assert.is(calls.size, 0);
});

test.run();
