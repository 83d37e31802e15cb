// S7: wildcard cost: 1,000 pattern listeners in other processes, S1 on a channel that matches one of them.
import { cell, med, ratioCell, target, times } from '../lib/cells.mjs';
import { PING_CHANNEL, pingNodes, pingRun } from './s1-roundtrip.mjs';

/**
 * Filler processes holding `total` listener names between them. qcop gets patterns
 * (`fill/<i>/<j>/*`), raw-broker, which has none, exact names; one name matches the ping channel.
 */
function fillers(system, total, count) {
  const nodes = {};
  const per = Math.ceil(total / count);
  for (let i = 0; i < count; i++) {
    const names = [];
    for (let j = 0; j < per && i * per + j < total; j++) names.push(system === 'qcop' ? `fill/${i}/${j}/*` : `fill/${i}/${j}`);
    nodes[`filler${i}`] = { role: 'filler', names, subscribes: names };
  }
  nodes.filler0.names[0] = system === 'qcop' ? 'bench/pi*' : PING_CHANNEL;
  return nodes;
}

export default {
  id: 'S7',
  title: 'Wildcard cost',
  what: 'S1 while other processes hold 1,000 listener names, one of which matches the ping channel (its holder receives every ping too); qcop: patterns, raw-broker: exact names (it has no patterns)',
  // 'qcop, no fillers' is S1 again, interleaved here so the target compares runs made under the same load.
  variants: () => [
    { key: 'qcop', system: 'qcop', fill: true },
    { key: 'qcop, no fillers', system: 'qcop', fill: false },
    { key: 'raw-broker', system: 'raw-broker', fill: true },
  ],
  run: (v, plan) => pingRun(v.system, pingNodes(v.fill ? fillers(v.system, plan.s7.names, plan.s7.fillers) : {}), plan.s7),
  brief: (m) => `p50 ${m.p50.toFixed(1)} µs, p99 ${m.p99.toFixed(1)} µs`,
  report(summary, plan, ctx) {
    const plain = summary['qcop, no fillers'] ?? {};
    const rows = ['qcop', 'qcop, no fillers', 'raw-broker'].map((k) => {
      const s = summary[k] ?? {};
      return [k, cell(s.p50, 'µs'), ratioCell(s.p50, summary['raw-broker']?.p50), ratioCell(s.p50, plain.p50), cell(s.p99, 'µs'), ratioCell(s.p99, summary['raw-broker']?.p99)];
    });
    const r = med(summary, 'qcop', 'p50') / med(summary, 'qcop, no fillers', 'p50');
    return {
      tables: [{
        caption: `${plan.s7.names} listener names in ${plan.s7.fillers} processes; ${plan.s7.count} round trips per run after ${plan.s7.warmup} warm-up; "qcop, no fillers" is S1's setup run interleaved here, the reference of the target`,
        header: ['system', 'p50', '× raw-broker', '× qcop, no fillers', 'p99', '× raw-broker'],
        rows,
      }],
      targets: [target('S7', 'p50 ≤ 1.3× S1 (S1 setup interleaved in S7)', times(r), Number.isFinite(r) ? r <= 1.3 : null, 'each ping is also delivered to the process holding the matching pattern: one more write in the broker, one more process on 2 cores')],
    };
  },
};
