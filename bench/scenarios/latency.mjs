// One-way latency runs shared by S3 and S6: sequential sends, each waiting for every receiver's ack.
import { withRun } from '../lib/systems.mjs';

const DATA = 'bench/large';
const ACK = 'bench/ack';

export function percentile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN;
}

/** Source plus `receivers` sinks that acknowledge each message on a back channel. */
export function latencyNodes(receivers) {
  const nodes = { source: { role: 'source', channel: DATA, ack: ACK, receivers, publishes: [DATA], subscribes: [ACK] } };
  for (let i = 0; i < receivers; i++) nodes[`sink${i}`] = { role: 'sink', channel: DATA, ack: ACK, subscribes: [DATA], publishes: [ACK] };
  return nodes;
}

/**
 * Runs the latency `plan` ([{size, count}]) and optionally a burst of `burst` messages of
 * `burstSize` afterwards, with the same processes. Returns latencies per size (µs samples of all
 * receivers) and the burst's per-receiver throughput.
 */
export async function latencyRun(system, { receivers, plan, warmup, burst = 0, burstSize = 0, idleMs }) {
  return withRun(system, latencyNodes(receivers), async ({ w }) => {
    const lat = await w.source.ask('latency', 'done', { plan, warmup });
    let sent = null;
    if (burst) sent = await w.source.ask('burst', 'done', { count: burst, size: burstSize });
    // Never report a path that was not taken: qcop-shm and qcop-loan must have used the pool, qcop must not have.
    if ((system === 'qcop-shm' || system === 'qcop-loan') && !lat.shm) throw new Error('the shared-memory path was not active in the sender');
    if (system === 'qcop' && lat.shm) throw new Error('the socket variant used shared memory');
    const sinks = Object.keys(w).filter((k) => k.startsWith('sink'));
    const reports = await Promise.all(sinks.map((k) => w[k].ask('finish', 'report', { expected: burst, idleMs })));
    const latency = {};
    for (const { size } of plan) {
      const all = reports.flatMap((r) => r.latency[size] ?? []).sort((a, b) => a - b);
      latency[size] = { p50: percentile(all, 0.5), p99: percentile(all, 0.99), n: all.length };
    }
    const out = { latency };
    if (burst) {
      const rates = reports.map((r) => (r.count * burstSize) / (1 << 20) / ((r.last - sent.start) / 1e9));
      out.mibps = rates.reduce((a, b) => a + b, 0) / rates.length;
      out.lost = reports.reduce((n, r) => n + (burst - r.count), 0);
      out.lostTold = reports.reduce((n, r) => n + r.lost, 0);
    }
    return out;
  });
}

