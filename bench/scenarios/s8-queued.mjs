// S8 (SPEC §10): messages per second into a queued channel (sync and batch durability), and S1's
// ping latency on ordinary channels while a queued channel is being written.
import { NOT_MEASURED, cell, med, target, times } from '../lib/cells.mjs';
import { withRun } from '../lib/systems.mjs';
import { pingNodes } from './s1-roundtrip.mjs';

const QUEUED = 'bench/queued/q';
const config = (durability) => ({ queued: ['bench/queued/*'], durability });

/** A source bursting `count` 64-byte messages into the queued channel, a sink acknowledging each. */
async function intoQueue(durability, count, idleMs) {
  const nodes = {
    source: { role: 'source', channel: QUEUED, publishes: [QUEUED] },
    sink: { role: 'sink', channel: QUEUED, subscribes: [QUEUED] },
  };
  return withRun('qcop', nodes, async ({ w }) => {
    const sent = await w.source.ask('burst', 'done', { count, size: 64 });
    const r = await w.sink.ask('finish', 'report', { expected: count, idleMs });
    if (r.count !== count) throw new Error(`${count - r.count} of ${count} messages did not arrive`);
    return { rate: r.count / ((r.last - sent.start) / 1e9) };
  }, { config: config(durability) });
}

/** S1's ping pair; with `rate`, a third process writes that many messages per second into a queued channel (sync durability), consumed by a fourth. */
async function pingWhileWriting(rate, plan) {
  const extra = rate
    ? {
        writer: { role: 'trickle', channel: QUEUED, rate, publishes: [QUEUED] },
        drain: { role: 'sink', channel: QUEUED, subscribes: [QUEUED] },
      }
    : {};
  return withRun('qcop', pingNodes(extra), async ({ w }) => {
    if (rate) await w.writer.ask('start', 'started');
    const r = await w.pinger.ask('run', 'done', { warmup: plan.warmup, count: plan.count, size: 64 });
    const out = { p50: r.p50, p99: r.p99 };
    if (rate) out.written = (await w.writer.ask('finish', 'report')).sent;
    return out;
  }, { config: config('sync') });
}

export default {
  id: 'S8',
  title: 'Queued channels (durable delivery)',
  what: 'messages per second into a queued channel, stored and acknowledged, with sync (group commit) and batch durability; S1 round trips on ordinary channels with and without a queued channel being written',
  variants: () => [
    { key: 'queued-sync', system: 'qcop', kind: 'rate', durability: 'sync' },
    { key: 'queued-batch', system: 'qcop', kind: 'rate', durability: 'batch' },
    { key: 'ping-quiet', system: 'qcop', kind: 'ping', rate: 0 },
    { key: 'ping-writing', system: 'qcop', kind: 'ping', rate: 1 },
  ],
  run: (v, plan) => (v.kind === 'rate'
    ? intoQueue(v.durability, plan.s8[v.durability], plan.idleMs)
    : pingWhileWriting(v.rate ? plan.s8.rate : 0, plan.s8)),
  brief: (m) => (m.rate !== undefined ? `${Math.round(m.rate)} msg/s` : `p50 ${m.p50.toFixed(1)} µs, p99 ${m.p99.toFixed(1)} µs${m.written ? `, ${m.written} written` : ''}`),
  report(summary, plan, ctx) {
    const s = (v) => summary[v] ?? {};
    const s1 = ctx.S1?.qcop?.p50?.median;
    const base = Number.isFinite(s1) ? s1 : med(summary, 'ping-quiet', 'p50');
    const ratio = base / med(summary, 'ping-writing', 'p50');
    return {
      tables: [
        {
          caption: `64-byte messages into ${QUEUED} (queued), a sink acknowledging each after its handler; sync: ${plan.s8.sync} messages, batch: ${plan.s8.batch}; median over runs (min–max)`,
          header: ['durability', 'messages/s'],
          rows: [['sync (group commit)', cell(s('queued-sync').rate, 'msg/s')], ['batch', cell(s('queued-batch').rate, 'msg/s')]],
        },
        {
          caption: `S1 round trips (${plan.s8.count} after ${plan.s8.warmup} warm-up) on a broker with queued channels, quiet or while another process writes ${plan.s8.rate} messages/s into a queued channel (sync durability) that a fourth consumes`,
          header: ['while', 'p50', 'p99'],
          rows: [['nothing else', cell(s('ping-quiet').p50, 'µs'), cell(s('ping-quiet').p99, 'µs')], [`${plan.s8.rate} msg/s written`, cell(s('ping-writing').p50, 'µs'), cell(s('ping-writing').p99, 'µs')]],
        },
      ],
      targets: [
        target('S8', `round-trip rate (1/p50) of ordinary channels while a queued channel is written ≥ 0.95× ${Number.isFinite(s1) ? "S1 qcop's of this run" : "the quiet broker's (S1 not run)"}`, Number.isFinite(ratio) ? times(ratio) : NOT_MEASURED, Number.isFinite(ratio) ? ratio >= 0.95 : null, 'each queued message costs the broker a write() of its record and of its acknowledgement, and the routing to the consumer; the fdatasync runs off the event loop (group commit)'),
      ],
    };
  },
};
