// The broker's figures (SPEC §4 `qcop stats`, PROTOCOL 3.9), gathered from its parts on request.
import { getHeapSpaceStatistics } from 'node:v8';
import type { BrokerCore } from './broker.js';
import type { Connection } from './connection.js';

/** Everything `qcop stats` prints; with `channels`, also the per-channel figures `qcop top` asks for. */
export function collectStats(
  b: BrokerCore,
  conns: ReadonlySet<Connection>,
  sources: ReadonlyMap<string, () => Record<string, unknown>>,
  started: number,
  channels: boolean,
): Record<string, unknown> {
  let total = 0;
  let max = 0;
  const connections = [];
  for (const c of conns) {
    const q = c.queuedBytes;
    total += q;
    if (q > max) max = q;
    connections.push({
      id: c.id, name: c.name, pid: c.pid, uid: c.peer?.uid ?? null, transport: c.transport, listeners: c.listening.size, queuedBytes: q,
      heldBytes: c.heldBytes(), partialBytes: c.partialBytes, callsInFlight: b.calls.inFlight(c), lost: c.lostTotal,
      stuck: c.stuck, holdingSenders: c.holdingSenders, paused: b.pauses.held(c), monitoring: b.monitor.watching(c),
    });
  }
  const k = b.counters;
  const o = b.options;
  return {
    broker: o.name,
    pid: process.pid,
    uptimeMs: Date.now() - started,
    clients: conns.size,
    channels: b.registry.size,
    routed: k.routed,
    delivered: k.delivered,
    dropped: { unrouted: k.unrouted, slowConsumer: k.droppedSlow, shm: b.shm.counters.dropped, total: k.unrouted + k.droppedSlow + b.shm.counters.dropped },
    disconnectedSlow: k.disconnectedSlow,
    backpressure: { enabled: o.backpressure, stallMs: o.stallMs, stuckReceivers: k.stuckReceivers },
    acl: b.access.stats(),
    users: b.quotas.stats(),
    calls: { started: k.calls, pending: b.calls.size, lateReplies: k.lateReplies },
    connectionsRefused: k.connectionsRefused,
    descriptors: b.descriptors.stats(),
    protocolErrors: k.protocolErrors,
    queues: { policy: o.slowConsumer, limitBytes: o.maxQueueBytes, totalBytes: total, maxBytes: max, connections },
    shm: { enabled: b.shm.enabled, threshold: o.shmThreshold, ...b.shm.stats(), reclaimed: b.departed.counters.reclaimed },
    memory: { ...processMemory(), ...b.budget.stats() },
    monitors: { connections: b.monitor.size, events: b.monitor.events },
    durable: b.durable.stats(),
    ...(channels ? { channelFigures: b.figures.report((ch) => b.access.filter(b.registry.route(ch), ch).length) } : {}),
    ...(sources.size > 0 ? { carriers: Object.fromEntries([...sources].map(([name, f]) => [name, f()])) } : {}),
  };
}

/**
 * The broker process's memory: RSS, V8's heap (used, reserved; of it the young generation, which a burst grows
 * and V8 gives back only when it collects again) and memory outside it (buffers), in bytes.
 */
function processMemory(): { rss: number; heapUsed: number; heapTotal: number; newSpace: number; external: number } {
  const m = process.memoryUsage();
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, newSpace: young?.space_size ?? 0, external: m.external };
}
