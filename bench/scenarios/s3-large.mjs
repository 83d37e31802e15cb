// S3: 1 MiB messages 1 → 1 and 1 → 4: throughput and one-way latency; qcop over sockets, and over shm (send(Buffer) and loan()) when it exists.
import { NOT_MEASURED, cell, med, ratioCell, target, times } from '../lib/cells.mjs';
import { LARGE } from '../lib/plan.mjs';
import { fmtSize } from '../lib/stats.mjs';
import { SYSTEMS } from '../lib/systems.mjs';
import { latencyRun } from './latency.mjs';

const SYSTEM_ORDER = ['qcop', 'qcop-shm', 'qcop-loan', 'raw-broker', 'raw-p2p'];

/**
 * The shm targets are judged for both ways into the pool, side by side: `send(Buffer, { transfer: true })`
 * (qcop-shm, the sender copies the data once into a slot) and `loan()` (qcop-loan, written in place, no copy).
 * `limit` says what is known to remain on each path when a target is missed.
 */
const SHM_PATHS = [
  {
    system: 'qcop-shm',
    name: 'qcop-shm, send(Buffer, { transfer: true }): one copy',
    tput: 'the sender copies the data once into a pool slot (send(Buffer)), the first touch of each fresh pool page included (a page fault per 4 KiB): a Buffer of the V8 heap cannot become shared memory without a copy, and transfer saves only the copy made while no slot is free, which a drain-paced burst rarely meets (docs/DECISIONS.md, transfer); loan() is the zero-copy way; then descriptor routing through the broker and each receiver\'s handling of the descriptor (msg.data is a zero-copy view), the slot coming back through the broker; on 2 cores the sender and 1–4 receivers share the CPU with the broker',
    lat: 'the sender\'s one copy of the data into the pool plus descriptor routing through the broker (two socket hops), against raw-p2p writing the bytes straight into the receiver socket',
  },
  {
    system: 'qcop-loan',
    name: 'qcop-loan, written in place: no copy',
    tput: 'no copy of the data: what remains per message is the descriptor routing through the broker, each receiver\'s handling of the descriptor (a zero-copy view, its ack) and the slot coming back through the broker before it can be lent again; on 2 cores the sender and 1–4 receivers share the CPU with the broker',
    lat: 'no copy of the data: what remains is descriptor routing through the broker (sender → broker → receiver, two socket hops, each with a process wake-up) and the receiver\'s handling of the descriptor, against raw-p2p\'s single hop',
  },
];

export default {
  id: 'S3',
  title: '1 MiB messages, 1 → 1 and 1 → 4',
  what: `messages of ${LARGE} bytes (the largest data one 1 MiB qcop frame holds): one-way latency of sequential sends (each waits for every receiver's ack), then a burst as fast as flow control allows`,
  variants: () => [1, 4].flatMap((fan) => SYSTEM_ORDER.map((s) => ({ key: `${s} 1→${fan}`, system: s, fan }))),
  async run(v, plan) {
    const r = await latencyRun(v.system, {
      receivers: v.fan, plan: [{ size: LARGE, count: plan.s3.latency }], warmup: 2, burst: plan.s3.burst, burstSize: LARGE, idleMs: plan.idleMs,
    });
    return { p50: r.latency[LARGE].p50, p99: r.latency[LARGE].p99, mibps: r.mibps, lost: r.lost, lostTold: r.lostTold };
  },
  brief: (m) => `p50 ${m.p50.toFixed(0)} µs, ${m.mibps.toFixed(0)} MiB/s per receiver, lost ${m.lost}`,
  report(summary, plan) {
    const tables = [];
    const targets = [];
    for (const fan of [1, 4]) {
      const rb = summary[`raw-broker 1→${fan}`] ?? {};
      const p2p = summary[`raw-p2p 1→${fan}`] ?? {};
      const rows = SYSTEM_ORDER.map((s) => {
        const k = `${s} 1→${fan}`;
        if (!SYSTEMS[s].available()) return [SYSTEMS[s].label, SYSTEMS[s].why, '', '', '', '', '', '', ''];
        if (!summary[k]) return [SYSTEMS[s].label, NOT_MEASURED, '', '', '', '', '', '', ''];
        const x = summary[k];
        return [SYSTEMS[s].label, cell(x.mibps, 'MiB/s'), ratioCell(x.mibps, rb.mibps), ratioCell(x.mibps, p2p.mibps), cell(x.p50, 'µs'), ratioCell(x.p50, rb.p50), ratioCell(x.p50, p2p.p50), cell(x.lost, 'count'), cell(x.lostTold, 'count')];
      });
      tables.push({
        caption: `1 → ${fan}: ${plan.s3.latency} timed messages and a burst of ${plan.s3.burst} per run; throughput per receiver`,
        header: ['system', 'throughput', '× raw-broker', '× raw-p2p', 'one-way p50', '× raw-broker', '× raw-p2p', 'lost in the burst', 'lost, told by broker'],
        rows,
      });
      const p2pTput = med(summary, `raw-p2p 1→${fan}`, 'mibps');
      const p2pLat = med(summary, `raw-p2p 1→${fan}`, 'p50');
      for (const path of SHM_PATHS) {
        const shm = SYSTEMS[path.system];
        const k = `${path.system} 1→${fan}`;
        // Without the shm path qcop-shm's rows show qcop over sockets, as before; qcop-loan's say so.
        const best = shm.available() ? k : `qcop 1→${fan}`;
        const tput = med(summary, best, 'mibps') / p2pTput;
        const lat = med(summary, best, 'p50') / p2pLat;
        // A saved run from before this system existed (--rerender) has no figures for it.
        const unmeasured = shm.available() && !summary[k];
        const measured = (x) =>
          unmeasured ? NOT_MEASURED
          : shm.available() ? times(x)
          : path.system === 'qcop-shm' ? `shm not available yet; qcop over sockets: ${times(x)}`
          : 'shm not available yet';
        const judged = (x) => (shm.available() && !unmeasured && Number.isFinite(x) ? x : null);
        targets.push(
          target('S3', `1→${fan}: shm throughput ≥ 2× raw-p2p (${path.name})`, measured(tput), judged(tput) === null ? null : tput >= 2, path.tput),
          target('S3', `1→${fan}: shm latency p50 ≤ 0.5× raw-p2p (${path.name})`, measured(lat), judged(lat) === null ? null : lat <= 0.5, path.lat),
        );
      }
    }
    const notes = [`"1 MiB" here is ${fmtSize(LARGE)} of data: a qcop frame (header, names, data) may not exceed 1 MiB, and larger data need the shared-memory path.`];
    const lossy = [1, 4].filter((fan) => summary[`qcop 1→${fan}`]?.lost?.max > 0);
    if (lossy.length) {
      notes.push(`qcop over sockets lost messages in the burst (1→${lossy.join(', 1→')}), each one counted and told to the receiver (Lost): send() pushes back only on the sender's own socket, the broker reads on, and a receiver more than maxQueueBytes behind (default 8 MiB, eight of these messages) is dropped for, as SPEC §2 specifies for slow receivers. The raw baselines have no queue limit and lose nothing.`);
    }
    return { tables, targets, notes };
  },
};
