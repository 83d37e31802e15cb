#!/usr/bin/env node
// S4 startup techniques: what the board bundle, one CommonJS file, a V8 code cache and a V8 startup snapshot give qcopd's
// spawn → ready time, CPU time and idle Pss_Anon, against a bare node holding one socket (S4's baseline), measured interleaved.
// `npm run bench:s4` (Node 18: `bash scripts/node18.sh run node bench/s4-startup.mjs`). Flags: --reps N (7), --settle MS (1000).
// Everything is built into one temp folder (bench/lib/procs.mjs), removed at the end, on failure and on Ctrl-C, with every process.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanupSync, installSignalCleanup, kill, memoryOf, nowNs, sleep, spawnServer, tmpDir, waitAccepting } from './lib/procs.mjs';
import { MiB, lastLines, lazyTable, log, prepare } from './lib/s4-variants.mjs';
import { median, rotate } from './lib/stats.mjs';

const USAGE = 'usage: node bench/s4-startup.mjs [--reps N] [--settle MS]';

function parseArgs(argv) {
  const a = { reps: 7, settleMs: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const num = () => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) usage(`${f} needs a whole number`);
      return n;
    };
    if (f === '--reps') a.reps = Math.max(1, num());
    else if (f === '--settle') a.settleMs = num();
    else if (f === '-h' || f === '--help') { console.log(USAGE); process.exit(0); }
    else usage(`unknown flag ${f}`);
  }
  return a;
}

function usage(why) {
  process.stderr.write(`s4-startup: EINVAL: ${why}\n${USAGE}\n`);
  process.exit(2);
}


// ---------------------------------------------------------------------------------------------
// Measuring

/** CPU time a process's threads have used so far, in ns (/proc/PID/task/TID/schedstat): unlike wall time, barely moved by the machine's other load. */
function cpuNs(pid) {
  let ns = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
  return ns;
}

/** One start: spawn → the socket accepts (polled every ms), settle, then Pss_Anon and whether the addon is mapped. */
async function measure(v, work, settleMs, seq) {
  const socket = path.join(work, `m${seq}-${v.key}.sock`);
  const t0 = nowNs();
  const child = spawnServer(v.args(socket));
  try {
    const readyMs = await waitAccepting(socket, t0, child);
    await sleep(settleMs);
    const m = memoryOf(child.pid);
    const cpuMs = cpuNs(child.pid) / 1e6;
    let addon = false;
    try {
      addon = fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8').includes('qcop_native.node');
    } catch {}
    const rejected = v.rejectedText && child.stderrText().includes(v.rejectedText);
    return { readyMs, cpuMs, pssAnon: m.pssAnon, rss: m.rss, addon, rejected };
  } finally {
    await kill(child);
  }
}

function summary(xs) {
  const v = xs.filter(Number.isFinite);
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

function table(variants, results) {
  const bare = results.bare;
  const rows = [
    '| variant | ready, median (min–max) | × bare node | CPU time by idle, median | × bare node | idle Pss_Anon, median | + over bare node | JS loaded before ready |',
    '|---|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const v of variants) {
    const r = results[v.key];
    if (v.why || !r || !r.ready.n) {
      rows.push(`| ${v.label} | not measured: ${v.why ?? r?.error ?? 'no run succeeded'} | | | | | | ${v.js ?? ''} |`);
      continue;
    }
    const ready = `${r.ready.median.toFixed(1)} ms (${r.ready.min.toFixed(1)}–${r.ready.max.toFixed(1)})`;
    const x = bare?.ready.n ? `${(r.ready.median / bare.ready.median).toFixed(2)}×` : '–';
    const cpu = `${r.cpu.median.toFixed(1)} ms`;
    const xc = bare?.cpu.n ? `${(r.cpu.median / bare.cpu.median).toFixed(2)}×` : '–';
    const anon = `${(r.anon.median / MiB).toFixed(1)} MiB`;
    const d = bare?.anon.n ? (r.anon.median - bare.anon.median) / MiB : NaN;
    const plus = Number.isFinite(d) ? `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(1)} MiB` : '–';
    rows.push(`| ${v.label} | ${ready} | ${x} | ${cpu} | ${xc} | ${anon} | ${plus} | ${v.js ?? '?'} |`);
  }
  return rows.join('\n');
}


// ---------------------------------------------------------------------------------------------

const args = parseArgs(process.argv.slice(2));
installSignalCleanup();
const work = tmpDir();
try {
  const load0 = os.loadavg()[0];
  log(`node ${process.version}, temp folder ${work}`);
  const { variants, notes } = await prepare(work);
  const live = variants.filter((v) => !v.why);
  const runs = Object.fromEntries(live.map((v) => [v.key, []]));
  const errors = {};
  let seq = 0;
  for (let rep = 0; rep < args.reps; rep++) {
    for (const v of rotate(live, rep)) {
      try {
        const m = await measure(v, work, args.settleMs, seq++);
        runs[v.key].push(m);
        log(`rep ${rep + 1}/${args.reps} ${v.key}: ready ${m.readyMs.toFixed(1)} ms, CPU ${m.cpuMs.toFixed(1)} ms, Pss_Anon ${(m.pssAnon / MiB).toFixed(1)} MiB${m.addon ? ', addon' : ''}`);
      } catch (e) {
        errors[v.key] = lastLines(e.message);
        log(`rep ${rep + 1}/${args.reps} ${v.key}: FAILED ${errors[v.key]}`);
      }
    }
  }
  const results = {};
  for (const v of live) {
    const rs = runs[v.key];
    results[v.key] = { ready: summary(rs.map((r) => r.readyMs)), cpu: summary(rs.map((r) => r.cpuMs)), anon: summary(rs.map((r) => r.pssAnon)), error: errors[v.key] };
    if (v.qcop !== false && rs.length && rs.some((r) => !r.addon)) notes.push(`${v.label}: the native addon was not mapped at ready in ${rs.filter((r) => !r.addon).length}/${rs.length} runs`);
    if (rs.some((r) => r.rejected)) notes.push(`${v.label}: V8 rejected the code cache in ${rs.filter((r) => r.rejected).length}/${rs.length} runs`);
  }
  const load1 = os.loadavg()[0];
  let lazy;
  try {
    lazy = await lazyTable(work, variants.find((v) => v.key === 'dist').coverage);
  } catch (e) {
    lazy = `(module table not built: ${lastLines(e.message)})`;
  }
  const out = [
    `### Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`,
    '',
    `*${args.reps} starts per variant, interleaved (the order rotates each repetition); ready = spawn → the socket first accepts a connection (polled every ms); CPU time = user + system time of all the process's threads ${args.settleMs} ms after ready (/proc/PID/task/*/schedstat), which the machine's other load barely moves; idle Pss_Anon at the same moment (/proc/PID/smaps_rollup); load average ${load0.toFixed(1)} before, ${load1.toFixed(1)} after*`,
    '',
    table(variants, results),
    '',
    ...notes.map((n) => `- ${n}`),
    ...(notes.length ? [''] : []),
    lazy,
    '',
  ];
  process.stdout.write(out.join('\n'));
} finally {
  cleanupSync();
}
