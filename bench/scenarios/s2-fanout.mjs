// S2: fan-out 1 → 4 receivers, 64 B, as fast as flow control allows; S5 reuses it with a stopped receiver.
import { cell, med, ratioCell, target, times } from '../lib/cells.mjs';
import { cont, cpuOf, memorySampler, stop } from '../lib/procs.mjs';
import { fmt } from '../lib/stats.mjs';
import { ACL_RULES, SYSTEMS, withRun } from '../lib/systems.mjs';
import { aclNote, aclTarget } from './s1-roundtrip.mjs';

const FAN = 'bench/fan';

/**
 * One burst of `count` 64-byte messages to `receivers` sinks (plus one SIGSTOPped sink when
 * `stopped`). Rates are per fast receiver: messages received / (last arrival − first send), or,
 * with `fromMs`, messages received from `fromMs` after the stop (the broker's stallMs: until then
 * SPEC §2 holds the sender back for the stopped receiver) / the time from then to the last arrival.
 */
export async function fanoutRun(system, { count, warmup = 0, receivers = 4, stopped = false, queueBytes, idleMs, fromMs = 0 }) {
  const nodes = { source: { role: 'source', channel: FAN, publishes: [FAN] } };
  for (let i = 0; i < receivers; i++) nodes[`sink${i}`] = { role: 'sink', channel: FAN, subscribes: [FAN] };
  if (stopped) nodes.slow = { role: 'sink', channel: FAN, subscribes: [FAN] };
  return withRun(system, nodes, async ({ w, broker }) => {
    const fast = Object.keys(w).filter((k) => k.startsWith('sink'));
    if (warmup) {
      // Steady state, not JIT warm-up, is what is compared: a first burst is received and forgotten.
      await w.source.ask('burst', 'done', { count: warmup, size: 64 });
      await Promise.all([...fast, ...(stopped ? ['slow'] : [])].map((k) => w[k].ask('finish', 'report', { expected: warmup, idleMs })));
      await Promise.all([...fast, ...(stopped ? ['slow'] : [])].map((k) => w[k].ask('reset', 'reset')));
    }
    const stoppedAt = Number(process.hrtime.bigint());
    if (stopped) stop(w.slow.child);
    const sampler = broker.child ? memorySampler(broker.child.pid, 50) : null;
    const brokerCpu0 = broker.child ? cpuOf(broker.child.pid) : NaN;
    let sent, reports, peak;
    try {
      sent = await w.source.ask('burst', 'done', { count, size: 64 });
      reports = await Promise.all(fast.map((k) => w[k].ask('finish', 'report', { expected: count, idleMs })));
    } finally {
      peak = sampler?.stop();
    }
    const brokerCpu = broker.child ? cpuOf(broker.child.pid) - brokerCpu0 : NaN;
    const from = stoppedAt + fromMs * 1e6;
    const rates = reports.map((r) => {
      if (!fromMs) return (r.count / (r.last - sent.start)) * 1e9;
      const mark = r.marks.find(([, at]) => at >= from);
      // A burst that ended before then (the smoke plan): its whole rate.
      if (!mark || mark[1] >= r.last) return (r.count / (r.last - sent.start)) * 1e9;
      return ((r.count - mark[0]) / (r.last - mark[1])) * 1e9;
    });
    const m = {
      rate: rates.reduce((a, b) => a + b, 0) / rates.length,
      minRate: Math.min(...rates),
      sendRate: (count / (sent.end - sent.start)) * 1e9,
      // How long delivery lasted: S2's bursts must fill every queue (3 s or more at the defaults).
      seconds: Math.max(...reports.map((r) => r.last - sent.start)) / 1e9,
      lost: reports.reduce((n, r) => n + (count - r.count), 0),
      lostTold: reports.reduce((n, r) => n + r.lost, 0),
      // CPU time per message, which the machine's other load does not change much (the sender's includes its wait for flush).
      cpuSender: sent.cpuUs / count,
      cpuReceiver: reports.reduce((n, r) => n + r.cpuUs, 0) / reports.length / count,
    };
    if (broker.child) m.cpuBroker = brokerCpu / count;
    if (peak) Object.assign(m, { peakRss: Math.max(peak.rss, peak.hwm), peakPssAnon: peak.pssAnon });
    if (stopped) {
      cont(w.slow.child);
      const r = await w.slow.ask('finish', 'report', { expected: count, idleMs });
      Object.assign(m, { slowReceived: r.count, slowTold: r.lost });
    }
    return m;
  }, { maxQueueBytes: queueBytes });
}

export default {
  id: 'S2',
  title: 'Fan-out 1 → 4, 64 B',
  what: 'one sender bursts 64-byte messages as fast as flow control allows (send() false → wait for drain) to 4 receiving processes',
  variants: () => ['qcop', 'qcop-acl', 'qcop-top', 'qcop-bundle', 'raw-broker', 'raw-p2p'].map((s) => ({ key: s, system: s })),
  run: (v, plan) => fanoutRun(v.system, { count: plan.s2.count, warmup: plan.s2.warmup, idleMs: plan.idleMs }),
  brief: (m) => `${fmt(m.rate, 'msg/s')} per receiver (slowest ${fmt(m.minRate, 'msg/s')}) over ${m.seconds.toFixed(1)} s, lost ${m.lost}${m.peakRss ? `, broker peak RSS ${fmt(m.peakRss, 'bytes')}` : ''}`,
  report(summary, plan) {
    const rb = summary['raw-broker'] ?? {};
    const rows = ['qcop', 'qcop-acl', 'qcop-top', 'qcop-bundle', 'raw-broker', 'raw-p2p'].map((v) => {
      if (!SYSTEMS[v].available()) return [v, SYSTEMS[v].why, '', '', '', '', '', ''];
      const s = summary[v] ?? {};
      return [v, cell(s.rate, 'msg/s'), ratioCell(s.rate, rb.rate), cell(s.minRate, 'msg/s'), cell(s.sendRate, 'msg/s'), cell(s.seconds, 's'), cell(s.lost, 'count'), cell(s.lostTold, 'count')];
    });
    const cpuRows = ['qcop', ...(SYSTEMS['qcop-acl'].available() ? ['qcop-acl'] : []), 'raw-broker', 'raw-p2p'].map((v) => {
      const s = summary[v] ?? {};
      const total = (s.cpuSender?.median ?? 0) + (s.cpuBroker?.median ?? 0) + 4 * (s.cpuReceiver?.median ?? NaN);
      return [v, cell(s.cpuSender, 'µs'), v === 'raw-p2p' ? 'n/a' : cell(s.cpuBroker, 'µs'), cell(s.cpuReceiver, 'µs'), cell({ median: total, n: 1 }, 'µs')];
    });
    const r = med(summary, 'qcop', 'rate') / med(summary, 'raw-broker', 'rate');
    const rBundle = med(summary, 'qcop-bundle', 'rate') / med(summary, 'raw-broker', 'rate');
    const rAcl = med(summary, 'qcop-acl', 'rate') / med(summary, 'qcop', 'rate');
    const rTop = med(summary, 'qcop-top', 'rate') / med(summary, 'qcop', 'rate');
    const lostMax = Math.max(summary.qcop?.lost?.max ?? NaN, summary['qcop-bundle']?.lost?.max ?? 0, summary['qcop-acl']?.lost?.max ?? 0);
    const shortest = Math.min(summary.qcop?.seconds?.min ?? NaN, summary['qcop-bundle']?.seconds?.min ?? Infinity, summary['qcop-acl']?.seconds?.min ?? Infinity);
    const us = (v, k) => med(summary, v, k).toFixed(1);
    const sum = (v) => (med(summary, v, 'cpuSender') + med(summary, v, 'cpuBroker') + 4 * med(summary, v, 'cpuReceiver')).toFixed(1);
    const why = `CPU per message on 2 shared cores: qcop ${sum('qcop')} µs against raw-broker ${sum('raw-broker')} µs (sender ${us('qcop', 'cpuSender')} vs ${us('raw-broker', 'cpuSender')}, broker ${us('qcop', 'cpuBroker')} vs ${us('raw-broker', 'cpuBroker')}, each receiver ${us('qcop', 'cpuReceiver')} vs ${us('raw-broker', 'cpuReceiver')}): the client library's work per message (names checked and written, CBOR encoded and copied into a frame; on receipt names decoded, listeners looked up, a ReceivedMessage built, CBOR decoded)`;
    const whyAcl = `per message the broker asks the policy 5 times more than without one (allowed(send) for the sender, listenable for each of the 4 receivers); each answer is cached (the ${ACL_RULES} rules are walked once per user, action and channel), but finding it builds a string key (identity, action, channel) and hashes it for a Map lookup, each time (a broker profile of S2 put Policy.allowed at about a fifth of the broker's busy time); broker CPU per message: qcop-acl ${us('qcop-acl', 'cpuBroker')} µs against qcop ${us('qcop', 'cpuBroker')} µs (the CPU table); the rest is the noise of a shared 2-core machine: compare the min–max of the two`;
    return {
      tables: [{
        caption: `${plan.s2.count} messages per run after a warm-up burst of ${plan.s2.warmup}, qcopd with its default settings (qcop: bin/qcopd.js; qcop-bundle: the board bundle's qcopd.js, what a board runs; ${aclNote('per message 1 send and 4 deliveries')}); rate = messages received by one receiver / (its last arrival − first send), mean of the 4 receivers`,
        header: ['system', 'msg/s per receiver', '× raw-broker', 'slowest receiver', 'send rate', 'delivery lasted', 'lost (all receivers)', 'lost, told by broker'],
        rows,
      }, {
        caption: 'CPU time per message (user + system, medians): where the 2 cores go; the sum is what bounds throughput when every process shares them',
        header: ['system', 'sender', 'broker', 'each receiver', 'sum (sender + broker + 4 receivers)'],
        rows: cpuRows,
      }],
      targets: [
        target('S2', 'delivered msg/s per receiver ≥ 0.9× raw-broker', times(r), Number.isFinite(r) ? r >= 0.9 : null, why),
        target('S2', 'the same for the board bundle (qcopd.js of out/targets)', times(rBundle), Number.isFinite(rBundle) ? rBundle >= 0.9 : null, why),
        target('S2', 'with `qcop top` running (per-channel figures kept): delivered msg/s per receiver ≥ 0.95× qcop\'s', times(rTop), Number.isFinite(rTop) ? rTop >= 0.95 : null, 'while a top asks, the broker counts each message in a per-channel map (runtime/broker/channel-figures.ts): one Map lookup and three additions per message; without one it tests a boolean'),
        aclTarget('S2', `with a ${ACL_RULES}-rule policy (qcop-acl, clients unprivileged): delivered msg/s per receiver ≥ 0.95× qcop's`, summary, rAcl, (x) => x >= 0.95, whyAcl),
        target('S2', '0 lost, bursts of 3 s or more', `${lostMax ?? '–'} lost (worst run), shortest burst ${Number.isFinite(shortest) ? shortest.toFixed(1) : '–'} s`, Number.isFinite(lostMax) ? lostMax === 0 && shortest >= 3 : null, lostMax > 0 ? 'the broker dropped for receivers it should have held the sender back for (SPEC §2)' : 'the burst was too short to fill every queue: raise the plan\'s s2.count'),
      ],
    };
  },
};
