// S5: S2 with one extra receiver stopped by SIGSTOP: the fast receivers' rate and the broker's peak memory.
import { cell, med, ratioCell, target, times } from '../lib/cells.mjs';
import { fmt } from '../lib/stats.mjs';
import { fanoutRun } from './s2-fanout.mjs';

const MiB = 1 << 20;

export default {
  id: 'S5',
  title: 'Slow consumer: S2 plus one stopped receiver',
  what: 'S2 with a fifth receiver stopped (SIGSTOP) before the burst and continued afterwards; qcopd runs with --max-queue-bytes; raw-p2p has no broker to protect the others (a stopped peer blocks its sender), so it is not run',
  // '(S2)' variants are S2 with the same broker settings, interleaved so "× its S2" compares runs made under the same load.
  variants: () => ['qcop', 'raw-broker'].flatMap((s) => [{ key: s, system: s, stopped: true }, { key: `${s} (S2)`, system: s, stopped: false }]),
  // Rates from stallMs after the stop (SPEC §2: until then the broker holds the sender back for the stopped receiver).
  run: (v, plan) => fanoutRun(v.system, { count: plan.s5.count, warmup: plan.s5.warmup, stopped: v.stopped, queueBytes: plan.s5.queueBytes, idleMs: plan.idleMs, fromMs: v.stopped ? plan.s5.stallMs : 0 }),
  brief: (m) => `${fmt(m.rate, 'msg/s')} per fast receiver, lost ${m.lost}, peak RSS ${fmt(m.peakRss, 'bytes')}${m.slowReceived === undefined ? '' : `, stopped one got ${m.slowReceived} and was told of ${m.slowTold} lost`}`,
  report(summary, plan) {
    const rb = summary['raw-broker'] ?? {};
    const rows = ['qcop', 'raw-broker'].map((k) => {
      const s = summary[k] ?? {};
      const s2 = summary[`${k} (S2)`] ?? {};
      return [k, cell(s.rate, 'msg/s'), ratioCell(s.rate, rb.rate), cell(s2.rate, 'msg/s'), ratioCell(s.rate, s2.rate), cell(s.lost, 'count'), cell(s.peakRss, 'bytes'), cell(s2.peakRss, 'bytes'), cell(s.peakPssAnon, 'bytes'), cell(s.slowReceived, 'count'), cell(s.slowTold, 'count')];
    });
    const rate = med(summary, 'qcop', 'rate') / med(summary, 'qcop (S2)', 'rate');
    const growth = med(summary, 'qcop', 'peakRss') - med(summary, 'qcop (S2)', 'peakRss');
    const bound = 5 * plan.s5.queueBytes;
    return {
      tables: [{
        caption: `${plan.s5.count} messages per run after a warm-up burst of ${plan.s5.warmup} (the fifth receiver is stopped after the warm-up); qcopd --max-queue-bytes ${plan.s5.queueBytes} (${fmt(plan.s5.queueBytes, 'bytes')} per receiver) and its default stallMs of ${plan.s5.stallMs} ms; with the stopped receiver, rates count from stallMs after the stop; "same, no stopped receiver" is S2 with the same settings, interleaved`,
        header: ['system', 'msg/s per fast receiver', '× raw-broker', 'same, no stopped receiver', 'ratio', 'lost (fast)', 'broker peak RSS', 'peak RSS, no stopped receiver', 'peak Pss_Anon', 'stopped receiver got', 'told lost'],
        rows,
      }],
      targets: [
        target('S5', 'fast receivers ≥ 0.9× their S2 rate, from stallMs after the stop', times(rate), Number.isFinite(rate) ? rate >= 0.9 : null, 'after stallMs the broker drops for the stuck receiver (counting each loss) and sends the rest on; on 2 shared cores run-to-run noise is of the same order'),
        target('S5', 'broker RSS bounded by its queue limit (peak − S2 peak ≤ 5 receivers × limit)', `${growth >= 0 ? '+' : ''}${(growth / MiB).toFixed(1)} MiB, bound ${(bound / MiB).toFixed(0)} MiB`, Number.isFinite(growth) ? growth <= bound : null, 'RSS also holds V8 heap growth (young generation) and freed-but-unreturned memory, not only the queued bytes'),
      ],
    };
  },
};
