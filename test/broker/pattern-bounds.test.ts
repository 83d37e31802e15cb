// The broker-wide bounds on distinct patterns (docs/CONFIG.md maxPatterns, maxWatchPatterns): new texts past them are ELIMIT, known ones always accepted.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, startBroker, type Broker, type Client, type WatchEvent } from '../../runtime/index.js';
import { cleanup, tempDir } from '../helpers/procs.js';

let broker: Broker;
let socket: string;
const clients: Client[] = [];

async function client(name: string): Promise<Client> {
  const c = await connect({ socket, name });
  c.on('error', () => {}); // refusals are read from the handles
  clients.push(c);
  return c;
}

/** The code a handle's readiness failed with, or 'ok'. */
const outcome = (p: Promise<void>): Promise<string> => p.then(() => 'ok', (e) => e.code);

test.before.each(async () => {
  socket = path.join(tempDir(), 'q.sock');
  broker = await startBroker({ socket, maxPatterns: 2, maxWatchPatterns: 1, logLevel: 'error' });
});

test.after.each(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await broker.close();
  cleanup();
});

test('listener patterns: new texts up to maxPatterns, shared texts and exact names beyond', async () => {
  const a = await client('a');
  const b = await client('b');
  const handles = new Map<string, { close(): void }>();
  const l = (c: Client, name: string) => {
    const h = c.listen(name, () => {});
    h.on('error', () => {});
    handles.set(name, h);
    return outcome(h.ready);
  };
  assert.equal(await Promise.all([l(a, 'x/*'), l(a, 'y/*')]), ['ok', 'ok']);
  assert.is(await l(b, 'z/*'), 'ELIMIT', 'a third distinct pattern');
  assert.is(await l(b, 'x/*'), 'ok', 'a text another connection holds');
  assert.is(await l(b, 'exact/name'), 'ok', 'exact names are not patterns');
  assert.is(await a.deliver('x/1', 'm()'), 2);
  // When a text goes away its place is free again.
  handles.get('y/*')!.close();
  await a.flush();
  assert.is(await l(b, 'z/*'), 'ok');
});

test('watch patterns: new texts up to maxWatchPatterns; the same text and exact names beyond', async () => {
  const a = await client('a');
  const events: WatchEvent[] = [];
  const w = (name: string) => {
    const h = a.watch(name, (e) => events.push(e));
    h.on('error', () => {});
    return outcome(h.ready);
  };
  assert.is(await w('q/*'), 'ok');
  assert.is(await w('r/*'), 'ELIMIT');
  assert.is(await w('q/*'), 'ok', 'a second watch on the same text');
  assert.is(await w('q/exact'), 'ok');
  await (await client('b')).listen('q/exact', () => {}).ready;
  await a.stats(); // a round trip: the events are in
  assert.equal(events.filter((e) => e.channel === 'q/exact').length, 3, 'both pattern watches and the exact one heard it');
});

test.run();
