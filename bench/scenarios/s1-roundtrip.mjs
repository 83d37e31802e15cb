// S1: round trip of 64 B, ping on one channel echoed on another, sequential after warm-up.
import { NOT_MEASURED, cell, med, ratioCell, target, times } from '../lib/cells.mjs';
import { ACL_RULES, SYSTEMS, aclUser, withRun } from '../lib/systems.mjs';

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

const SYSTEM_ORDER = ['qcop', 'qcop-acl', 'raw-broker', 'raw-p2p'];

/** The caption's note on qcop-acl, shared with S2; `perMessage` says what the policy checks per message there. */
export function aclNote(perMessage) {
  if (!SYSTEMS['qcop-acl'].available()) return 'qcop-acl: not measured in this run (see its row)';
  return `qcop-acl: qcop with a ${ACL_RULES}-rule policy (--acl-dir; the rule granting the bench's channels is the last) and its clients running as the unprivileged user ${aclUser()}, so the policy applies to them: the broker checks every send (\`allowed\`) and every receiver of every message (\`listenable\`), both cached decisions: ${perMessage}`;
}

/**
 * A target comparing qcop-acl with qcop in the same run: `ratio` is qcop-acl / qcop of one
 * metric; unjudged (n/a) with the reason when qcop-acl is not available or has no figures.
 */
export function aclTarget(scenario, text, summary, ratio, met, limit) {
  const acl = SYSTEMS['qcop-acl'];
  if (!acl.available()) return target(scenario, text, acl.why, null, limit);
  if (!summary['qcop-acl']) return target(scenario, text, NOT_MEASURED, null, limit);
  // Three decimals: the bound is 5 %, and "1.05×" could be either side of 1.053.
  return target(scenario, text, Number.isFinite(ratio) ? `${ratio.toFixed(3)}× qcop` : '–', Number.isFinite(ratio) ? met(ratio) : null, limit);
}

export default {
  id: 'S1',
  title: 'Round trip, 64 B',
  what: 'ping on one channel, echoed by another process on a second channel; sequential round trips after warm-up, timed in the pinger',
  variants: () => SYSTEM_ORDER.map((s) => ({ key: s, system: s })),
  run: (v, plan) => pingRun(v.system, pingNodes(), plan.s1),
  brief: (m) => `p50 ${m.p50.toFixed(1)} µs, p99 ${m.p99.toFixed(1)} µs, p99.9 ${m.p999.toFixed(1)} µs`,
  report(summary, plan) {
    const rows = [];
    for (const v of SYSTEM_ORDER) {
      if (!SYSTEMS[v].available()) {
        rows.push([v, SYSTEMS[v].why, '', '', '', '', '']);
        continue;
      }
      const s = summary[v] ?? {};
      rows.push([v, cell(s.p50, 'µs'), ratioCell(s.p50, summary['raw-broker']?.p50), cell(s.p99, 'µs'), ratioCell(s.p99, summary['raw-broker']?.p99), cell(s.p999, 'µs'), ratioCell(s.p999, summary['raw-broker']?.p999)]);
    }
    const r50 = med(summary, 'qcop', 'p50') / med(summary, 'raw-broker', 'p50');
    const r99 = med(summary, 'qcop', 'p99') / med(summary, 'raw-broker', 'p99');
    const rAcl = med(summary, 'qcop-acl', 'p50') / med(summary, 'qcop', 'p50');
    return {
      tables: [{
        caption: `${plan.s1.count} round trips per run after ${plan.s1.warmup} warm-up; median over runs (min–max). ${aclNote('per round trip 2 sends and 2 deliveries')}`,
        header: ['system', 'p50', '× raw-broker', 'p99', '× raw-broker', 'p99.9', '× raw-broker'],
        rows,
      }],
      targets: [
        target('S1', 'p50 ≤ 1.1× raw-broker', times(r50), Number.isFinite(r50) ? r50 <= 1.1 : null, 'per message the qcop client validates names, CBOR-encodes the data and copies it into a frame; the receiving client decodes both names, looks up its listeners, builds a ReceivedMessage and decodes the CBOR; the raw baseline does none of it; the CPU-per-message table of S2 measures the difference'),
        target('S1', 'p99 ≤ 1.2× raw-broker', times(r99), Number.isFinite(r99) ? r99 <= 1.2 : null, 'the tail is scheduling on a shared 2-core machine (3 processes plus other load) as much as qcop: see p99 min–max'),
        aclTarget('S1', `with a ${ACL_RULES}-rule policy (qcop-acl, clients unprivileged): p50 ≤ 1/0.95× qcop's (1.053×)`, summary, rAcl, (x) => x <= 1 / 0.95, "per round trip the broker asks the policy 4 times more than without one (allowed(send) for the ping and the echo, listenable for each receiver); each answer is cached (the 20 rules are walked once per user, action and channel), but finding it builds a string key (identity, action, channel) and hashes it for a Map lookup, each time (a broker profile of S2 put Policy.allowed at about a fifth of the broker's busy time); the rest is the noise of a shared 2-core machine: compare the p50 min–max of qcop and qcop-acl"),
      ],
    };
  },
};
