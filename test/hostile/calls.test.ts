// Calls in flight (SPEC §8): one connection floods calls with 24 h timeouts to a listener that never
// answers. Past `maxCallsInFlight` each call gets ELIMIT at once and the connection stays open; the
// broker holds only the calls within the limit, and lets go of them when the caller goes.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Proc, cleanup, waitFor } from '../helpers/procs.js';
import { configArgs, stats } from './budget-kit.js';
import { assertHealthy, scene, type Scene } from './harness.js';

const FIXTURE = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures/calls-flood.mjs');
const LIMIT = 100;
const CALLS = 5000;

let s: Scene;
test.before.each(async () => {
  s = await scene(configArgs({ maxCallsInFlight: LIMIT }));
});
test.after.each(() => cleanup());

test(`${CALLS} calls with 24 h timeouts to a listener that never answers: ELIMIT past ${LIMIT}, bounded state, broker healthy`, async () => {
  const attacker = new Proc(process.execPath, [FIXTURE, s.broker.socket, 'svc/never', String(CALLS)]);
  await attacker.waitJson((v) => v.ev === 'sent', 20000, 'the calls written');
  let answered: any;
  await waitFor(async () => {
    const reports = attacker.json().filter((v) => v.ev === 'answered').length;
    attacker.child.stdin!.write('report\n');
    await waitFor(() => attacker.json().filter((v) => v.ev === 'answered').length > reports, 5000, 'a report');
    answered = attacker.json().filter((v) => v.ev === 'answered').pop();
    return (answered.codes.ELIMIT ?? 0) >= CALLS - LIMIT && answered.received >= LIMIT;
  }, 30000, 'the calls past the limit answered');
  assert.equal(answered.codes, { ELIMIT: CALLS - LIMIT }, 'only the calls past the limit were refused, each once');
  assert.is(answered.received, LIMIT, 'the listener was asked exactly the calls within the limit');

  const during = await stats(s.broker.socket);
  assert.is(during.calls.pending, LIMIT);
  const caller = during.queues.connections.find((c: any) => c.name === 'caller');
  assert.is(caller.callsInFlight, LIMIT);
  assert.is(during.memory.callBytes, LIMIT * 1024, 'the calls are counted in the memory budget');

  // The broker is healthy while they are pending: another client's call is answered (assertHealthy).
  await assertHealthy(s);
  attacker.child.stdin!.write('close-caller\n');
  await attacker.waitJson((v) => v.ev === 'closed', 10000, 'the caller closed');
  await waitFor(async () => (await stats(s.broker.socket)).calls.pending === 0, 10000, 'the calls forgotten');
});

test.run();
