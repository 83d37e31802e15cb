// S4: broker spawn → ready, idle and S2-peak memory (RSS and Pss_Anon), against a bare node process holding one socket.
import { cell, med, ratioCell, target, times } from '../lib/cells.mjs';
import { kill, memoryOf, nowNs, sleep, sockPath, spawnServer, waitAccepting } from '../lib/procs.mjs';
import { fmt } from '../lib/stats.mjs';
import { BARE, RAW_BROKER, qcopdCommand } from '../lib/systems.mjs';

const MiB = 1 << 20;
const COMMANDS = {
  'bare node': (s) => [BARE, s],
  'raw-broker': (s) => [RAW_BROKER, s],
  qcop: (s) => [...qcopdCommand('qcop'), '--socket', s],
  'qcop-bundle': (s) => [...qcopdCommand('qcop-bundle'), '--socket', s],
};

export default {
  id: 'S4',
  title: 'Broker start and footprint',
  what: 'spawn → the socket accepts a connection (polled every ms); memory after an idle settle, from /proc/PID/status VmRSS and /proc/PID/smaps_rollup Pss_Anon; S2 peaks sampled every 50 ms during S2',
  variants: () => Object.keys(COMMANDS).map((k) => ({ key: k, system: k })),
  async run(v, plan) {
    const socket = sockPath('s4');
    const t0 = nowNs();
    const child = spawnServer(COMMANDS[v.key](socket));
    try {
      const readyMs = await waitAccepting(socket, t0, child);
      await sleep(plan.s4.settleMs);
      const m = memoryOf(child.pid);
      return { readyMs, rss: m.rss, pssAnon: m.pssAnon };
    } finally {
      await kill(child);
    }
  },
  brief: (m) => `ready ${m.readyMs.toFixed(1)} ms, RSS ${fmt(m.rss, 'bytes')}, Pss_Anon ${fmt(m.pssAnon, 'bytes')}`,
  report(summary, plan, ctx) {
    const bare = summary['bare node'] ?? {};
    const rb = summary['raw-broker'] ?? {};
    const s2 = ctx.S2 ?? {};
    const rows = ['bare node', 'raw-broker', 'qcop', 'qcop-bundle'].map((k) => {
      const s = summary[k] ?? {};
      const peak = s2[k] ?? {};
      return [k, cell(s.readyMs, 'ms'), ratioCell(s.readyMs, bare.readyMs), ratioCell(s.readyMs, rb.readyMs), cell(s.rss, 'bytes'), cell(s.pssAnon, 'bytes'), ratioCell(s.pssAnon, rb.pssAnon), k === 'bare node' ? 'n/a' : cell(peak.peakRss, 'bytes'), k === 'bare node' ? 'n/a' : cell(peak.peakPssAnon, 'bytes')];
    });
    const ready = med(summary, 'qcop', 'readyMs') / med(summary, 'bare node', 'readyMs');
    const rss = (med(summary, 'qcop', 'rss') - med(summary, 'bare node', 'rss')) / MiB;
    const anon = (med(summary, 'qcop', 'pssAnon') - med(summary, 'bare node', 'pssAnon')) / MiB;
    const readyB = med(summary, 'qcop-bundle', 'readyMs') / med(summary, 'bare node', 'readyMs');
    const anonB = (med(summary, 'qcop-bundle', 'pssAnon') - med(summary, 'bare node', 'pssAnon')) / MiB;
    const sign = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)} MiB`;
    return {
      tables: [{
        caption: `idle = ${plan.s4.settleMs} ms after ready, no client; S2 peak = the broker during S2 (4 receivers); qcop = bin/qcopd.js (dist/, one file per module), qcop-bundle = the board bundle's qcopd.js (lib/daemon.mjs: the broker command alone, minified)`,
        header: ['process', 'spawn → ready', '× bare node', '× raw-broker', 'idle RSS', 'idle Pss_Anon', '× raw-broker', 'S2 peak RSS', 'S2 peak Pss_Anon'],
        rows,
      }],
      targets: [
        target('S4', 'idle RSS ≤ bare node + 8 MiB', `bare node ${sign(rss)}`, Number.isFinite(rss) ? rss <= 8 : null, 'code loaded before listening: the broker modules from dist/ (346 KB of JavaScript in 68 files, `npm run bench:s4`), durable delivery\'s store, activation and monitor modules included although a broker without queued channels or services does not use them before its first client'),
        target('S4', 'idle private memory (Pss_Anon) ≤ bare node + 2 MiB', `bare node ${sign(anon)}`, Number.isFinite(anon) ? anon <= 2 : null, 'V8 heap, bytecode and module records of the broker modules bin/qcopd.js loads from dist/ (one file each, unminified, with the code of the command table it shares with qcop); the board bundle below is what a board runs'),
        target('S4', 'ready ≤ 1.3× bare node start', times(ready), Number.isFinite(ready) ? ready <= 1.3 : null, 'module loading before listen(): bin/qcopd.js resolves and compiles 68 files of dist/ (bench/README.md, S4 options); boards run the bundle'),
        target('S4', 'board bundle: ready ≤ 1.3× bare node start', times(readyB), Number.isFinite(readyB) ? readyB <= 1.3 : null, 'the bundle\'s 140 KB of minified JavaScript compiled before listen(); in CPU time (steadier than wall time here) it is 1.4× bare node; one CJS file plus a code cache made at first start gives 1.16×, a V8 startup snapshot 1.09× (bench/README.md, S4 options: not shipped yet); the wall-clock ratio moves with this shared machine\'s load (1.10× to 1.52× for one build)'),
        target('S4', 'board bundle: idle Pss_Anon ≤ bare node + 2 MiB', `bare node ${sign(anonB)}`, Number.isFinite(anonB) ? anonB <= 2 : null, 'V8 heap, bytecode and module records of lib/daemon.mjs, durable delivery\'s modules (about 26 KB run before listen() though unused without queued channels or services; node:child_process through the service launcher) included; a snapshot adds memory (+3.4 MiB for bare node alone), one CJS file saves about 0.5 MiB (bench/README.md, S4 options); the same build drifts by about 0.7 MiB from run to run here'),
      ],
    };
  },
};
