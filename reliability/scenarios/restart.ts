// Broker kill -9 under load: 50 client processes sending and listening; the broker SIGKILLed and restarted
// on the same socket again and again; how soon every listener is back, and what each sender learnt about its messages.
import * as path from 'node:path';
import { connect } from '../../runtime/index.js';
import { Child, LIB, percentile, sleep, startQcopd, tempDir, waitFor } from '../lib/procs.js';
import { check, newRow, type Row, type RunContext } from '../lib/row.js';

const GOAL_MS = 1000;

export async function restart(ctx: RunContext): Promise<Row> {
  const clients = ctx.short ? 20 : 50;
  const restarts = ctx.short ? 3 : 20;
  const between = ctx.short ? 2000 : 3000;
  const row = newRow('restart', `${clients} clients in ${clients} processes; broker SIGKILLed and restarted ${restarts} times, ${between} ms of traffic between`);
  const socket = path.join(tempDir('restart'), 'qcop.sock');
  let broker = await startQcopd(socket);
  const kids: Child[] = [];
  for (let i = 0; i < clients; i++) kids.push(new Child(process.execPath, [path.join(LIB, 'restart-client.mjs'), socket, String(i), String(clients)], { stdin: true }));
  for (const k of kids) await k.waitJson((v) => v.ev === 'ready', 60000, 'restart client ready');
  const channels = kids.map((_, i) => `rel/r/${i}`);
  const backMs: number[] = [];
  const backFromAcceptMs: number[] = [];
  const downMs: number[] = [];
  const probeMisses: string[] = [];
  let probesSent = 0;
  await sleep(between);
  for (let r = 0; r < restarts; r++) {
    const killedAt = Date.now();
    broker.kill('SIGKILL');
    await broker.exited;
    const spawnedAt = Date.now();
    broker = await startQcopd(socket);
    // startQcopd returned once the socket accepted; when exactly is found by polling from the spawn.
    const acceptingAt = Date.now();
    downMs.push(acceptingAt - killedAt);
    // Every listener registered again, seen by a fresh probe client of the new broker.
    const probe = await connect({ socket, name: 'probe', reconnect: false });
    probe.on('error', () => {});
    try {
      await waitFor(async () => (await Promise.all(channels.map((ch) => probe.isRegistered(ch)))).every(Boolean), 20000, 'every listener back');
      const back = Date.now();
      backMs.push(back - spawnedAt);
      backFromAcceptMs.push(back - acceptingAt);
    } catch (e) {
      backMs.push(Infinity);
      probeMisses.push(`restart ${r}: ${(e as Error).message}`);
    }
    // A message reaches each listener.
    for (const ch of channels) {
      const n = await probe.deliver(ch, 'probe', r).catch(() => 0);
      probesSent++;
      if (n !== 1 && probeMisses.length < 5) probeMisses.push(`restart ${r}: probe to ${ch} reached ${n}`);
    }
    await probe.close();
    ctx.log(`restart ${r + 1}/${restarts}: listeners back ${backMs.at(-1)} ms after the spawn`);
    await sleep(between);
  }
  // Stop, account.
  for (const k of kids) k.command({ op: 'stop' });
  const stopped = await Promise.all(kids.map((k) => k.waitJson((v) => v.ev === 'stopped', 60000, 'restart client stopped')));
  await sleep(1500);
  for (const k of kids) k.command({ op: 'report' });
  const reports = await Promise.all(kids.map((k) => k.waitJson((v) => v.ev === 'report', 30000, 'restart client report')));
  let accepted = 0, refused = 0, unconfirmed = 0, unrouted = 0, flushed = 0, received = 0, dups = 0, probes = 0, silently = 0, uncounted = 0;
  const refusedCodes: Record<string, number> = {};
  const bad: string[] = [];
  stopped.forEach((s, i) => {
    const rx = reports[(i + 1) % clients];
    accepted += s.accepted;
    unconfirmed += s.unconfirmed;
    unrouted += s.unrouted;
    flushed += s.flushed;
    for (const [code, n] of Object.entries(s.refused as Record<string, number>)) {
      refused += n;
      refusedCodes[code] = (refusedCodes[code] ?? 0) + n;
    }
    // Every accepted send is confirmed by a flush (routed or unrouted) or counted unconfirmed at a disconnection.
    const neither = s.accepted - (s.flushed + s.unconfirmed);
    if (neither > 0) {
      uncounted += neither;
      if (bad.length < 5) bad.push(`r${i}: ${neither} sends neither confirmed by a flush nor counted unconfirmed`);
    }
    // What its receiver did not get must be at most what the sender was told of.
    const missing = s.accepted - (rx.received - rx.duplicates);
    const told = s.unconfirmed + s.unrouted;
    if (missing > told) {
      silently += missing - told;
      if (bad.length < 5) bad.push(`r${i}→r${(i + 1) % clients}: ${missing} not received, told of ${told}`);
    }
    received += rx.received - rx.duplicates;
    dups += rx.duplicates;
  });
  for (const r of reports) probes += r.probes;
  for (const k of kids) k.kill('SIGKILL');
  broker.kill('SIGTERM');
  await broker.exited;
  const finite = backMs.filter(Number.isFinite);
  const p99 = percentile(backMs, 99);
  row.figures.push(
    `every listener back after the restart: p50 ${percentile(finite, 50)} ms, p99 ${p99} ms, max ${Math.max(...backMs)} ms (from the new broker's spawn; from its socket accepting: p50 ${percentile(backFromAcceptMs, 50)}, p99 ${percentile(backFromAcceptMs, 99)} ms)`,
    `broker down ${percentile(downMs, 50)} ms (p50 from kill to accepting)`,
    `messages: ${accepted} accepted by send(), ${refused} refused ${JSON.stringify(refusedCodes)}; ${received} received; ${accepted - received} not received: senders were told of ${unconfirmed} unconfirmed (in 'disconnected') and ${unrouted} unrouted (in flush); ${flushed} confirmed by flushes; ${silently} silently lost; ${dups} duplicated`,
    `probes: ${probesSent} sent, ${probes} received`,
  );
  check(row, p99 < GOAL_MS, `listeners back in p99 ${p99} ms, goal < ${GOAL_MS} ms`);
  check(row, probeMisses.length === 0 && probes === probesSent, `probes: ${probes} of ${probesSent} received; ${probeMisses.join('; ')}`);
  check(row, uncounted === 0, `sender accounting: ${uncounted} sends neither confirmed nor counted (${bad.join('; ')})`);
  check(row, silently === 0, `${silently} messages silently lost (${bad.join('; ')})`);
  check(row, dups === 0, `${dups} messages duplicated`);
  return row;
}

