// S6: one-way latency over a size sweep (64 B … 16 MiB), 1 → 1; qcop over sockets stops at its 1 MiB frame limit.
import { NOT_MEASURED, cell, med, ratioCell, target, times } from '../lib/cells.mjs';
import { LARGE } from '../lib/plan.mjs';
import { fmtSize } from '../lib/stats.mjs';
import { SYSTEMS } from '../lib/systems.mjs';
import { latencyRun } from './latency.mjs';

export const SWEEP_SYSTEMS = ['qcop', 'qcop-shm', 'qcop-loan', 'raw-broker', 'raw-p2p'];

/** The shm path both ways into the pool, judged side by side; `limit` says what remains when the target is missed. */
const SHM_PATHS = [
  {
    system: 'qcop-shm',
    name: 'qcop-shm, send(Buffer, { transfer: true }): one copy',
    limit: 'the sender copies the data once into the pool (send(Buffer)), and that copy grows with the size: it runs at the memory bandwidth (16 MiB takes about 1.4 ms here, against 40 µs a MiB while it fits the caches), and a heap Buffer cannot become shared memory without it (docs/DECISIONS.md, transfer; loan() is flat); descriptor routing through the broker and the receiver\'s handling (msg.data is a zero-copy view) do not',
  },
  {
    system: 'qcop-loan',
    name: 'qcop-loan, written in place: no copy',
    limit: 'no copy of the data: what remains is descriptor routing through the broker and the receiver\'s handling of the descriptor (a zero-copy view), neither of which touches the data or grows with its size; a miss is therefore not the cost of a copy: check the min–max spread of the runs (the machine\'s load)',
  },
];
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
    // Available but without figures: a saved run from before the system existed (--rerender), or failed runs.
    const shmCell = (sys, v) => (!SYSTEMS[sys].available() ? 'not available yet' : !summary[sys] ? NOT_MEASURED : cell(v, 'µs'));
    const rows = plan.s6.sizes.map((size) => {
      const k = `p50@${size}`;
      const x = (s) => summary[s]?.[k];
      const qcop = size > maxSize('qcop') ? 'over the frame limit' : cell(x('qcop'), 'µs');
      return [
        fmtSize(size), qcop, shmCell('qcop-shm', x('qcop-shm')), shmCell('qcop-loan', x('qcop-loan')), cell(x('raw-broker'), 'µs'), cell(x('raw-p2p'), 'µs'),
        ratioCell(x('qcop'), x('raw-broker')), ratioCell(x('qcop'), x('raw-p2p')), ratioCell(x('qcop-shm'), x('raw-broker')), ratioCell(x('qcop-shm'), x('raw-p2p')), ratioCell(x('qcop-loan'), x('raw-broker')), ratioCell(x('qcop-loan'), x('raw-p2p')),
      ];
    });
    // "Flat above the threshold": from the first size above 64 KiB to the largest, p50 may at most double.
    const targets = SHM_PATHS.map((path) => {
      const shm = SYSTEMS[path.system].available();
      // Without the shm path qcop-shm's row shows qcop over sockets, as before; qcop-loan's says so.
      const sys = shm ? path.system : 'qcop';
      const above = plan.s6.sizes.filter((s) => s > 65536 && s <= maxSize(sys));
      const growth = med(summary, sys, `p50@${above.at(-1)}`) / med(summary, sys, `p50@${above[0]}`);
      const unmeasured = shm && !summary[path.system];
      const measured = unmeasured ? NOT_MEASURED
        : shm ? `${fmtSize(above[0])} → ${fmtSize(above.at(-1))}: ${times(growth)}`
        : path.system === 'qcop-shm' ? `shm not available yet; over sockets ${fmtSize(above[0])} → ${fmtSize(above.at(-1))} grows ${times(growth)}, and nothing above 1 MiB`
        : 'shm not available yet';
      return target('S6', `qcop flat above the 64 KiB threshold (${path.name}; read: p50 at most 2× from the first size above it to the largest)`, measured, shm && !unmeasured && Number.isFinite(growth) ? growth <= 2 : null, path.limit);
    });
    return {
      tables: [{
        caption: `p50 one-way latency, median over runs (min–max); timed messages per size: ${plan.s6.sizes.map((s) => `${fmtSize(s)} ${plan.s6.count(s)}`).join(', ')}. qcop shm: send(Buffer, { transfer: true }), one copy into the pool; loan: written in place (at or below 64 KiB a loan is an ordinary Buffer, sent over the socket)`,
        header: ['size', 'qcop (sockets)', 'qcop shm', 'qcop shm, loan', 'raw-broker', 'raw-p2p', 'qcop × raw-broker', 'qcop × raw-p2p', 'shm × raw-broker', 'shm × raw-p2p', 'loan × raw-broker', 'loan × raw-p2p'],
        rows,
      }],
      targets,
    };
  },
};
