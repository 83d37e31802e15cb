// Soak: a mixed workload for minutes — S1 round trips, S2 fan-out, large messages through the pool,
// calls, registration churn, short-lived processes killed or exiting — with the broker's RSS sampled and its slope
// after the warm-up reported, descriptors flat, no shm object of a dead process at any sample, nothing lost.
import * as path from 'node:path';
import { connect, listSegments, type Client } from '../../runtime/index.js';
import { Bystander } from '../lib/bystander.js';
import { Child, LIB, fdsOf, mib, rssOf, sleep, slope, startQcopd, tempDir, waitFor } from '../lib/procs.js';
import { check, newRow, type Row, type RunContext } from '../lib/row.js';
import { seeded } from './storm.js';

const FAN = 4;

export async function soak(ctx: RunContext): Promise<Row> {
  const totalMs = Math.round(ctx.soakMinutes * 60000);
  const sampleMs = totalMs >= 10 * 60000 ? 60000 : totalMs >= 3 * 60000 ? 15000 : Math.max(1000, Math.round(totalMs / 10));
  const row = newRow('soak');
  const socket = path.join(tempDir('soak'), 'qcop.sock');
  const broker = await startQcopd(socket);
  const rng = seeded(ctx.seed ^ 0x50a4);
  const fdsIdle = fdsOf(broker.pid);
  const open: Client[] = [];
  const client = async (name: string) => {
    const c = await connect({ socket, name });
    c.on('error', (e) => errors.length < 5 && errors.push(`${name}: ${(e as { code?: string }).code} ${e.message}`));
    open.push(c);
    return c;
  };
  const errors: string[] = [];
  const k = { s1: 0, s2sent: 0, s2got: 0, s2order: 0, large: 0, largeGot: 0, calls: 0, callFails: 0, churn: 0, procs: 0, killed: 0 };
  // S1: ping → echo → pong, one at a time.
  const ping = await client('s1-ping');
  const echo = await client('s1-echo');
  let pongWait: (() => void) | null = null;
  await echo.listen('soak/ping', (m) => echo.send('soak/pong', 'pong', m.data)).ready;
  await ping.listen('soak/pong', () => { k.s1++; pongWait?.(); }).ready;
  // S2: one sender, four receivers, numbered.
  const fanTx = await client('s2-tx');
  const fanLast = new Array<number>(FAN).fill(-1);
  for (let i = 0; i < FAN; i++) {
    const rx = await client(`s2-rx${i}`);
    await rx.listen('soak/fan', (m) => {
      if (m.data !== fanLast[i]! + 1) k.s2order++;
      fanLast[i] = m.data as number;
      k.s2got++;
    }).ready;
  }
  // Large messages through the pool, and calls.
  const bigTx = await client('large-tx');
  const bigRx = await client('large-rx');
  await bigRx.listen('soak/large', () => k.largeGot++).ready;
  const svc = await client('svc');
  await svc.listen('soak/svc', (m) => m.reply?.(m.data)).ready;
  const caller = await client('caller');
  const bystander = await Bystander.start(socket, 'rel/soak-bystander');
  await sleep(500);
  const fdsBefore = fdsOf(broker.pid);
  const big = Buffer.alloc(200 * 1024, 3);
  let stop = false;
  const loops: Array<Promise<void>> = [];
  const every = (ms: number, fn: () => Promise<void> | void) => loops.push((async () => {
    while (!stop) {
      await fn();
      await sleep(ms);
    }
  })());
  every(0, async () => {
    await new Promise<void>((resolve) => {
      pongWait = resolve;
      ping.send('soak/ping', 'ping', k.s1);
      setTimeout(resolve, 2000);
    });
  });
  every(10, async () => {
    for (let i = 0; i < 10; i++) if (!fanTx.send('soak/fan', 'n', k.s2sent++)) await new Promise((r) => fanTx.once('drain', r));
  });
  every(100, async () => {
    k.large++;
    if (!bigTx.send('soak/large', 'blob', big)) await new Promise((r) => bigTx.once('drain', r));
  });
  every(20, async () => {
    k.calls++;
    await caller.call('soak/svc', 'echo', k.calls, { timeoutMs: 5000 }).catch(() => k.callFails++);
  });
  // Churn: listeners and a watch registered and removed; the connection itself replaced every 50 rounds.
  let churner = await client('churn');
  every(50, async () => {
    k.churn++;
    const ls = [0, 1, 2, 3, 4].map((i) => churner.listen(`soak/churn/${k.churn % 97}/${i}`, () => {}));
    const w = churner.watch(`soak/churn/${k.churn % 13}`, () => {});
    await Promise.all([...ls.map((l) => l.ready), w.ready]).catch(() => {});
    for (const l of ls) l.close();
    w.close();
    if (k.churn % 50 === 0) {
      await churner.close();
      open.splice(open.indexOf(churner), 1);
      churner = await client('churn');
    }
  });
  // Short-lived processes: listen, send small and large, then SIGKILLed or told to exit.
  const dead = new Map<number, number>(); // pid → when it died
  every(1500, async () => {
    const p = new Child(process.execPath, [path.join(LIB, 'storm-client.mjs'), socket, `soak${k.procs}`, '-', '-', k.procs % 3 === 0 ? 'own' : '']);
    k.procs++;
    void p.waitJson((v) => v.ev === 'busy', 30000, 'soak process').catch(() => {}).then(async () => {
      await sleep(200 + rng() * 600);
      if (rng() < 0.5) { p.kill('SIGKILL'); k.killed++; } else p.kill('SIGTERM');
      await p.exited;
      dead.set(p.pid, Date.now());
    });
  });
  // Samples.
  const samples: Array<[number, number]> = [];
  const fds: number[] = [];
  let staleSeen = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < totalMs) {
    await sleep(Math.min(sampleMs, totalMs - (Date.now() - t0)));
    samples.push([(Date.now() - t0) / 60000, rssOf(broker.pid)?.rss ?? 0]);
    fds.push(fdsOf(broker.pid));
    const now = Date.now();
    const leftovers = listSegments().filter((s) => {
      const pool = /^qcop-pool\/(\d+)-/.exec(s.key);
      const pid = pool ? Number(pool[1]) : NaN;
      return dead.has(pid) && now - dead.get(pid)! > 1000;
    });
    staleSeen = Math.max(staleSeen, leftovers.length);
    ctx.log(`soak: ${((now - t0) / 60000).toFixed(1)} min, broker RSS ${mib(samples.at(-1)![1])} MiB, fds ${fds.at(-1)}`);
  }
  stop = true;
  await Promise.all(loops);
  await sleep(2500);
  const byOk = await bystander.stop();
  await fanTx.flush();
  await waitFor(() => fanLast.every((v) => v === k.s2sent - 1), 10000, 'the fan-out').catch(() => {});
  await waitFor(() => k.largeGot === k.large, 10000, 'the large messages').catch(() => {});
  const leftOwn = listSegments().filter((s) => s.key.startsWith('storm-own/soak')).length;
  for (const c of open.splice(0)) await c.close();
  await bystander.close();
  await sleep(500);
  const fdsAfter = fdsOf(broker.pid);
  const s = (await (async () => {
    const c = await connect({ socket, name: 'final' });
    const st = await c.stats() as any;
    await c.close();
    return st;
  })());
  broker.kill('SIGTERM');
  await broker.exited;
  // Slope after the warm-up (the first third).
  const warm = samples.filter(([t]) => t * 60000 >= totalMs / 3);
  const perMin = slope(warm);
  const atWarm = warm[0]?.[1] ?? 0;
  const growth = warm.length ? warm.at(-1)![1] - atWarm : 0;
  const minutes = ctx.soakMinutes.toFixed(ctx.soakMinutes < 1 ? 2 : 1);
  row.did = `${minutes} minutes: ${k.s1} S1 round trips, ${k.s2sent} S2 messages to ${FAN} receivers, ${k.large} messages of 200 KiB, ${k.calls} calls, ${k.churn} churn rounds (×5 listeners + 1 watch), ${k.procs} short-lived processes (${k.killed} SIGKILLed), ${bystander.sent} bystander messages`;
  row.figures.push(
    `broker RSS ${samples.map(([, r]) => mib(r)).join(' ')} MiB (every ${sampleMs / 1000} s; warm-up ${(totalMs / 3000).toFixed(0)} s)`,
    `slope after warm-up ${perMin.toFixed(0)} KiB/min, ${mib(growth)} MiB over the rest (${atWarm ? ((growth / atWarm) * 100).toFixed(1) : '?'} %)`,
    `broker fds ${fdsIdle} idle, ${fdsBefore} with the workload's clients, ${Math.min(...fds)}–${Math.max(...fds)} at the samples, ${fdsAfter} once they closed`,
    `after: clients ${s.clients}, channels ${s.channels}, calls pending ${s.calls.pending}, pool segments ${s.shm.segments}; shm objects of dead processes at a sample: max ${staleSeen}, own objects left ${leftOwn}`,
    `S2 received ${k.s2got} of ${k.s2sent * FAN}${k.s2order ? `, ${k.s2order} out of order` : ''}; large ${k.largeGot} of ${k.large}; failed calls ${k.callFails}`,
    bystander.describe(),
  );
  // Seconds of soak are still inside V8's own warm-up (its heap grows in steps): the short form reports the slope,
  // the long form (minutes, sampled each minute) judges it.
  if (ctx.short) row.figures.push('RSS growth not judged in the short form (seconds are inside V8\'s heap warm-up; the long form judges it)');
  else check(row, growth <= atWarm * 0.1, `broker RSS grows after warm-up: ${perMin.toFixed(0)} KiB/min, ${mib(growth)} MiB (${((growth / atWarm) * 100).toFixed(1)} %)`);
  check(row, fdsAfter <= fdsIdle, `broker fds ${fdsIdle} idle before, ${fdsAfter} after every client closed`);
  check(row, staleSeen === 0 && leftOwn === 0, `shm objects of dead processes: ${staleSeen} at a sample, ${leftOwn} at the end`);
  check(row, k.s2got === k.s2sent * FAN && k.s2order === 0, `S2 lost or reordered: ${k.s2got} of ${k.s2sent * FAN}, ${k.s2order} out of order`);
  check(row, k.largeGot === k.large, `large messages: ${k.largeGot} of ${k.large}`);
  check(row, k.callFails === 0, `${k.callFails} calls failed`);
  check(row, errors.length === 0, `client errors: ${errors.join('; ')}`);
  check(row, byOk, `bystander: ${bystander.describe()}`);
  check(row, s.calls.pending === 0 && s.shm.segments === 0 && s.clients === 1, `broker not back to idle: clients ${s.clients}, calls ${s.calls.pending}, segments ${s.shm.segments}`);
  return row;
}
