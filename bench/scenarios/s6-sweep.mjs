// S6: one-way latency over a size sweep (64 B … 16 MiB), 1 → 1; qcop over sockets stops at its 1 MiB frame limit.
import { cell, med, ratioCell, target, times } from '../lib/cells.mjs';
import { LARGE } from '../lib/plan.mjs';
import { fmtSize } from '../lib/stats.mjs';
import { SYSTEMS } from '../lib/systems.mjs';
import { latencyRun } from './latency.mjs';

export const SWEEP_SYSTEMS = ['qcop', 'qcop-shm', 'raw-broker', 'raw-p2p'];
/** qcop over sockets carries data up to one frame; past it, only the shm path could. */
export const maxSize = (system) => (system === 'qcop' ? LARGE : Infinity);

export default {
  id: 'S6',
  title: 'Size sweep, one-way latency 1 → 1',
  what: 'sequential sends of each size (each waits for the ack), one-way latency = receipt time − send time stamped in the data (CLOCK_MONOTONIC, shared by processes)',
  variants: () => SWEEP_SYSTEMS.map((s) => ({ key: s, system: s })),
  async run(v, plan) {
    const sizes = plan.s6.sizes.filter((s) => s <= maxSize(v.system));
    const r = await latencyRun(v.system, { receivers: 1, plan: sizes.map((size) => ({ size, count: plan.s6.count(size) })), warmup: 2, idleMs: plan.idleMs });
    const m = {};
    for (const size of sizes) {
      m[`p50@${size}`] = r.latency[size].p50;
      m[`p99@${size}`] = r.latency[size].p99;
    }
    return m;
  },
  brief: (m) => Object.entries(m).filter(([k]) => k.startsWith('p50@')).map(([k, v]) => `${fmtSize(Number(k.slice(4)))} ${v.toFixed(0)}`).join(', ') + ' µs',
  report(summary, plan) {
    const rows = plan.s6.sizes.map((size) => {
      const k = `p50@${size}`;
      const x = (s) => summary[s]?.[k];
      const qcop = size > maxSize('qcop') ? 'over the frame limit' : cell(x('qcop'), 'µs');
      const shm = SYSTEMS['qcop-shm'].available() ? cell(x('qcop-shm'), 'µs') : 'not available yet';
      return [fmtSize(size), qcop, shm, cell(x('raw-broker'), 'µs'), cell(x('raw-p2p'), 'µs'), ratioCell(x('qcop'), x('raw-broker')), ratioCell(x('qcop'), x('raw-p2p')), ratioCell(x('qcop-shm'), x('raw-broker')), ratioCell(x('qcop-shm'), x('raw-p2p'))];
    });
    // "Flat above the threshold": from the first size above 64 KiB to the largest, p50 may at most double.
    const shm = SYSTEMS['qcop-shm'].available();
    const sys = shm ? 'qcop-shm' : 'qcop';
    const above = plan.s6.sizes.filter((s) => s > 65536 && s <= maxSize(sys));
    const growth = med(summary, sys, `p50@${above.at(-1)}`) / med(summary, sys, `p50@${above[0]}`);
    const measured = shm
      ? `${fmtSize(above[0])} → ${fmtSize(above.at(-1))}: ${times(growth)}`
      : `shm not available yet; over sockets ${fmtSize(above[0])} → ${fmtSize(above.at(-1))} grows ${times(growth)}, and nothing above 1 MiB`;
    return {
      tables: [{
        caption: `p50 one-way latency, median over runs (min–max); timed messages per size: ${plan.s6.sizes.map((s) => `${fmtSize(s)} ${plan.s6.count(s)}`).join(', ')}`,
        header: ['size', 'qcop (sockets)', 'qcop shm', 'raw-broker', 'raw-p2p', 'qcop × raw-broker', 'qcop × raw-p2p', 'shm × raw-broker', 'shm × raw-p2p'],
        rows,
      }],
      targets: [
        target('S6', 'qcop flat above the 64 KiB threshold (shm path; read: p50 at most 2× from the first size above it to the largest)', measured, shm && Number.isFinite(growth) ? growth <= 2 : null, 'the data are still copied once into the pool by the sender and decoded by the receiver: the cost of those copies grows with size'),
      ],
    };
  },
};
