// Running out of file descriptors (SPEC §8): a broker under `ulimit -n 64` gets 100 connections at
// once; every one is either served or refused and counted, the burst is logged once, the clients
// already connected are still served, and the broker takes connections again once they close.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, Proc, QCOPD, cleanup, runCli, socketAnswers, tempDir, waitFor } from '../helpers/procs.js';
import { assertHealthy, traffic } from './harness.js';
import { sceneAround } from './users.js';

test.after.each(() => cleanup());

test('ulimit -n 64 and 100 connections: each served or refused with a count, one log line, the broker recovers', async () => {
  const socket = path.join(tempDir(), 'qcop.sock');
  const broker = new Proc('bash', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${QCOPD}" --socket "${socket}" --log-level error`]);
  await waitFor(async () => {
    if (broker.child.exitCode !== null) throw new Error(`broker exited: ${broker.stderr}`);
    return socketAnswers(socket);
  }, 10000, 'the broker under ulimit -n 64');
  const s = await sceneAround(broker, socket);

  const many = new Proc(process.execPath, [path.join(FIXTURES, 'many-connections.mjs'), socket, '100']);
  const opened = await many.waitJson((v) => v.ev === 'opened', 30000, 'the 100 connections');
  assert.ok(opened.ok > 0 && opened.ok < 100, `some connections were served, not all (${JSON.stringify(opened)})`);
  // The clients that were connected before the burst are still served while the descriptors are gone.
  await traffic(s, 100);

  many.child.stdin!.write('close\n');
  await many.waitJson((v) => v.ev === 'closed', 10000, 'the connections to close');
  await many.exited;
  let stats: any;
  await waitFor(async () => {
    const r = await runCli(['stats', '--socket', socket]);
    if (r.code === 0) stats = JSON.parse(r.stdout);
    return r.code === 0;
  }, 10000, 'qcop stats once descriptors are free');
  const d = stats.descriptors;
  assert.is(d.limit, 64);
  assert.ok(d.refused > 0, 'refusals are counted');
  assert.is(opened.ok + d.refused + d.acceptErrors, 100, `every connection was served or counted (${JSON.stringify(d)})`);
  const lines = broker.stderr.split('\n').filter((l) => l.includes('out of file descriptors'));
  assert.is(lines.length, 1, `one log line for the burst:\n${broker.stderr}`);
  assert.match(lines[0]!, /^qcopd: error: out of file descriptors: \d+ of 64 descriptors are open; refusing new connections \(ELIMIT\)/);
  await assertHealthy(s);
});

test.run();
