// S1: round trip of 64 B, ping on one channel echoed on another, sequential after warm-up.
import { cell, med, ratioCell, target, times } from '../lib/cells.mjs';
import { withRun } from '../lib/systems.mjs';

const PING = 'bench/ping';
const PONG = 'bench/pong';

/** The echo and pinger pair, plus `extra` nodes (S7's fillers). */
export function pingNodes(extra = {}) {
  return {
    echo: { role: 'echo', in: PING, out: PONG, subscribes: [PING], publishes: [PONG] },
    pinger: { role: 'pinger', in: PING, out: PONG, subscribes: [PONG], publishes: [PING] },
    ...extra,
  };
}

export async function pingRun(system, nodes, { warmup, count }) {
  return withRun(system, nodes, async ({ w }) => {
    const r = await w.pinger.ask('run', 'done', { warmup, count, size: 64 });
    return { p50: r.p50, p99: r.p99, p999: r.p999, mean: r.mean, max: r.max };
  });
}

export const PING_CHANNEL = PING;

export default {
  id: 'S1',
  title: 'Round trip, 64 B',
  what: 'ping on one channel, echoed by another process on a second channel; sequential round trips after warm-up, timed in the pinger',
  variants: () => ['qcop', 'raw-broker', 'raw-p2p'].map((s) => ({ key: s, system: s })),
  run: (v, plan) => pingRun(v.system, pingNodes(), plan.s1),
  brief: (m) => `p50 ${m.p50.toFixed(1)} µs, p99 ${m.p99.toFixed(1)} µs, p99.9 ${m.p999.toFixed(1)} µs`,
  report(summary, plan) {
    const rows = [];
    for (const v of ['qcop', 'raw-broker', 'raw-p2p']) {
      const s = summary[v] ?? {};
      rows.push([v, cell(s.p50, 'µs'), ratioCell(s.p50, summary['raw-broker']?.p50), cell(s.p99, 'µs'), ratioCell(s.p99, summary['raw-broker']?.p99), cell(s.p999, 'µs'), ratioCell(s.p999, summary['raw-broker']?.p999)]);
    }
    const r50 = med(summary, 'qcop', 'p50') / med(summary, 'raw-broker', 'p50');
    const r99 = med(summary, 'qcop', 'p99') / med(summary, 'raw-broker', 'p99');
    return {
      tables: [{
        caption: `${plan.s1.count} round trips per run after ${plan.s1.warmup} warm-up; median over runs (min–max)`,
        header: ['system', 'p50', '× raw-broker', 'p99', '× raw-broker', 'p99.9', '× raw-broker'],
        rows,
      }],
      targets: [
        target('S1', 'p50 ≤ 1.1× raw-broker', times(r50), Number.isFinite(r50) ? r50 <= 1.1 : null, 'per message the qcop client validates names, CBOR-encodes the data and copies it into a frame; the receiving client decodes both names, looks up its listeners, builds a ReceivedMessage and decodes the CBOR; the raw baseline does none of it; the CPU-per-message table of S2 measures the difference'),
        target('S1', 'p99 ≤ 1.2× raw-broker', times(r99), Number.isFinite(r99) ? r99 <= 1.2 : null, 'the tail is scheduling on a shared 2-core machine (3 processes plus other load) as much as qcop: see p99 min–max'),
      ],
    };
  },
};
