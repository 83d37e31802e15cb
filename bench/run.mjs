#!/usr/bin/env node
// `npm run bench`: runs S1–S8 against the raw baselines in one go, writes RESULTS.md, results.json and the S6 chart.
// Flags: --quick | --smoke (mode), --out DIR, --only S1,S3 (subset). Progress goes to stderr.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PLANS } from './lib/plan.mjs';
import { BENCH, ROOT, cleanupSync, installSignalCleanup, killAllSync, tmpDir } from './lib/procs.mjs';
import { renderMarkdown } from './lib/report.mjs';
import { rotate, summarizeRuns } from './lib/stats.mjs';
import { renderSweepSvg } from './lib/svg.mjs';
import { ACL_RULES, QCOPD_NODE_ARGS, SYSTEMS, aclUser, buildBundle, prepareAcl, probeShm, restoreAcl, restoreShm } from './lib/systems.mjs';
import S1 from './scenarios/s1-roundtrip.mjs';
import S2 from './scenarios/s2-fanout.mjs';
import S3 from './scenarios/s3-large.mjs';
import S4 from './scenarios/s4-footprint.mjs';
import S5 from './scenarios/s5-slow.mjs';
import S6 from './scenarios/s6-sweep.mjs';
import S7 from './scenarios/s7-wildcard.mjs';
import S8 from './scenarios/s8-queued.mjs';

const SCENARIOS = [S1, S2, S3, S4, S5, S6, S7, S8];
const SVG_NAME = 's6-size-sweep.svg';

function parseArgs(argv) {
  const a = { mode: 'full', out: null, only: null, label: null };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === '--quick') a.mode = 'quick';
    else if (f === '--smoke') a.mode = 'smoke';
    else if (f === '--full') a.mode = 'full';
    else if (f === '--out') a.out = argv[++i];
    else if (f === '--label') a.label = argv[++i];
    else if (f === '--rerender') a.rerender = true;
    else if (f === '--only') a.only = new Set(argv[++i].split(',').map((s) => s.trim().toUpperCase()));
    else {
      process.stderr.write(`usage: node bench/run.mjs [--quick|--smoke] [--out DIR] [--only S1,S2] [--label TEXT] [--rerender]\nEINVAL unknown flag ${f}\n`);
      process.exit(2);
    }
  }
  // A quick run does not overwrite the committed results of a full run.
  a.out ??= a.mode === 'full' ? BENCH : path.join(BENCH, 'raw', a.mode);
  return a;
}

const args = parseArgs(process.argv.slice(2));
if (args.rerender) {
  // Rewrites RESULTS.md and the chart from an existing results.json with the current report code (no measuring).
  const saved = JSON.parse(fs.readFileSync(path.join(args.out, 'results.json'), 'utf8'));
  // The shm verdict of the measuring run: saved in meta, or read from the runs it made.
  const ran = Object.values(saved.scenarios).some((r) => r.runs.some((x) => x.system === 'qcop-shm' && x.metrics));
  saved.meta.shm ??= { ok: ran, why: ran ? '' : 'not available yet (not recorded)' };
  restoreShm(saved.meta.shm);
  const ranAcl = Object.values(saved.scenarios).some((r) => r.runs.some((x) => x.system === 'qcop-acl' && x.metrics));
  saved.meta.acl ??= { ok: ranAcl, why: ranAcl ? '' : 'not measured (these results have no qcop-acl runs)' };
  restoreAcl(saved.meta.acl);
  const ctx = {};
  for (const sc of SCENARIOS) {
    const r = saved.scenarios[sc.id];
    if (!r) continue;
    ctx[sc.id] = r.summary;
    Object.assign(r, sc.report(r.summary, PLANS[saved.meta.mode], ctx));
  }
  writeOutputs(saved);
  process.exit(0);
}
const plan = PLANS[args.mode];
const started = Date.now();
const log = (s) => process.stderr.write(s + '\n');
installSignalCleanup();

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    memory: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
  };
}

/** Which code was measured: the commit, and whether the runtime had uncommitted changes. */
function source() {
  if (args.label) return args.label;
  try {
    const head = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', 'runtime', 'bin'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `commit ${head}${dirty ? ` with ${dirty.split('\n').length} uncommitted runtime/bin changes` : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms))),
  ]);
}

const results = {
  meta: { mode: args.mode, source: source(), qcopdNodeArgs: QCOPD_NODE_ARGS.join(' '), workerNodeArgs: process.env.QCOP_BENCH_WORKER_ARGS ?? '', date: new Date().toISOString(), machine: machine(), loadBefore: os.loadavg(), plan: { ...plan, s6: { ...plan.s6, count: undefined } } },
  scenarios: {},
};
const ctx = {}; // summaries of earlier scenarios, for the targets that compare against them

const selected = SCENARIOS.filter((s) => !args.only || args.only.has(s.id));
const countRuns = () => selected.reduce((n, s) => n + plan.reps[s.id] * s.variants(plan).filter((v) => SYSTEMS[v.system]?.available() ?? true).length, 0);
let totalRuns = countRuns();
let done = 0;
log(`bench: ${args.mode} mode, ${selected.length} scenarios, ${totalRuns} runs; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; node ${process.version}; temp folder ${tmpDir()}`);

try {
  if (selected.some((s) => s.variants(plan).some((v) => v.system === 'qcop-bundle'))) {
    const built = buildBundle(path.join(tmpDir(), 'targets'));
    log(`bench: board bundle: ${built ?? SYSTEMS['qcop-bundle'].why}`);
    totalRuns = countRuns();
  }
  if (selected.some((s) => s.variants(plan).some((v) => v.system === 'qcop-acl'))) {
    const acl = await prepareAcl();
    results.meta.acl = { ok: acl.ok, why: acl.why, user: acl.user };
    log(`bench: qcop with a ${ACL_RULES}-rule policy: ${acl.ok ? `available, measured as qcop-acl with its clients running as ${aclUser()}` : acl.why}`);
    totalRuns = countRuns();
  }
  if (selected.some((s) => s.id === 'S3' || s.id === 'S6')) {
    const shm = await probeShm();
    results.meta.shm = shm;
    log(`bench: qcop shared-memory message path: ${shm.ok ? 'available, measured as qcop-shm (send(Buffer, { transfer: true })) and qcop-loan (loan(), written in place)' : shm.why}`);
    totalRuns = countRuns();
  }
  for (const sc of selected) {
    const variants = sc.variants(plan);
    const live = variants.filter((v) => SYSTEMS[v.system]?.available() ?? true);
    const missing = variants.filter((v) => !live.includes(v)).map((v) => ({ variant: v.key, why: SYSTEMS[v.system].why }));
    const runs = [];
    const t0 = Date.now();
    for (let rep = 0; rep < plan.reps[sc.id]; rep++) {
      for (const v of rotate(live, rep)) {
        const r0 = Date.now();
        let entry;
        try {
          const metrics = await withTimeout(sc.run(v, plan, ctx), plan.runTimeoutMs, `${sc.id} ${v.key}`);
          entry = { variant: v.key, system: v.system, rep, ms: Date.now() - r0, metrics };
        } catch (err) {
          entry = { variant: v.key, system: v.system, rep, ms: Date.now() - r0, error: String(err?.message ?? err) };
          killAllSync(); // a failed run may leave processes behind
        }
        runs.push(entry);
        done++;
        const brief = entry.error ? `ERROR ${entry.error}` : (sc.brief?.(entry.metrics) ?? '');
        log(`[${String(done).padStart(3)}/${totalRuns}] ${sc.id} ${v.key.padEnd(18)} rep ${rep + 1}/${plan.reps[sc.id]}  ${(entry.ms / 1000).toFixed(1)} s  ${brief}`);
      }
    }
    const summary = summarizeRuns(runs);
    ctx[sc.id] = summary;
    const rep = sc.report(summary, plan, ctx);
    results.scenarios[sc.id] = { id: sc.id, title: sc.title, what: sc.what, seconds: (Date.now() - t0) / 1000, unavailable: missing, summary, runs, ...rep };
    log(`${sc.id} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
} finally {
  results.meta.loadAfter = os.loadavg();
  results.meta.seconds = (Date.now() - started) / 1000;
  cleanupSync();
}

writeOutputs(results);

function writeOutputs(results) {
  fs.mkdirSync(args.out, { recursive: true });
  fs.writeFileSync(path.join(args.out, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  if (results.scenarios.S6) fs.writeFileSync(path.join(args.out, SVG_NAME), renderSweepSvg(results.scenarios.S6, results.meta));
  fs.writeFileSync(path.join(args.out, 'RESULTS.md'), renderMarkdown(results, { svgName: SVG_NAME, jsonName: 'results.json' }));
}
const errors = Object.values(results.scenarios).flatMap((s) => s.runs.filter((r) => r.error));
log(`bench: done in ${results.meta.seconds.toFixed(0)} s, ${errors.length} failed runs; wrote ${path.join(args.out, 'RESULTS.md')}, ${path.join(args.out, 'results.json')}${results.scenarios.S6 ? `, ${path.join(args.out, SVG_NAME)}` : ''}`);
// Exit now: a run abandoned at its timeout may still hold timers or handles.
process.exit(errors.length ? 1 : 0);

