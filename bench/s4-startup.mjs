#!/usr/bin/env node
// S4 startup techniques: what the board bundle, one CommonJS file, a V8 code cache and a V8 startup snapshot give qcopd's
// spawn → ready time, CPU time and idle Pss_Anon, against a bare node holding one socket (S4's baseline), measured interleaved.
// `npm run bench:s4` (Node 18: `bash scripts/node18.sh run node bench/s4-startup.mjs`). Flags: --reps N (7), --settle MS (1000).
// Everything is built into one temp folder (bench/lib/procs.mjs), removed at the end, on failure and on Ctrl-C, with every process.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { buildProgram, cjsInterop, eagerOutputs, foldImportSpecifiers, resolveChannels } from '../targets/build/bundle.mjs';
import { loadProfiles } from '../targets/build/profiles.mjs';
import { ROOT, cleanupSync, installSignalCleanup, kill, memoryOf, nowNs, sleep, spawnServer, tmpDir, waitAccepting } from './lib/procs.mjs';
import { median, rotate } from './lib/stats.mjs';
import { BARE, QCOPD, SYSTEMS, buildBundle } from './lib/systems.mjs';

const USAGE = 'usage: node bench/s4-startup.mjs [--reps N] [--settle MS]';
const MiB = 1 << 20;
const BUNDLE_TARGETS = { x64: 'x64', arm64: 'rpi-arm64', arm: 'rpi-armhf' }; // as bench/lib/systems.mjs
const ABSENT = /^(cbor-extract|x11|usocket|abstract-socket)$/; // as targets/build/bundle.mjs: optional native helpers left out
const RUNTIME = path.join(ROOT, 'runtime') + path.sep;

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

const log = (s) => process.stderr.write(`s4: ${s}\n`);
const size = (f) => fs.statSync(f).size;
const kb = (n) => `${(n / 1000).toFixed(n < 10000 ? 1 : 0)} KB`;
/** The last lines of a process's stderr without Node's warnings: its error. */
const lastLines = (s, n = 2) => String(s ?? '').trim().split('\n').filter((l) => !/Warning|trace-warnings|It may still work|To request support|^\s*$/.test(l)).slice(-n).join(' ').trim();

// ---------------------------------------------------------------------------------------------
// Builds

/**
 * The daemon (targets/entry/daemon.ts: `export { daemon as main }`) as one minified CommonJS file,
 * with the resolution rules of the board build that matter here (optional native helpers left
 * out, constant import() specifiers folded so lazily loaded runtime modules are bundled; in a CJS
 * file they stay lazy: esbuild wraps them in init functions). import.meta.url, empty in CJS, is
 * defined as this file's URL so runtime/native/index.ts finds prebuilds/ beside it (also inside a
 * snapshot, where process.argv[1] is not a script). lazyChildProcess: node:child_process is
 * required on first use instead of at load (Node 18's snapshot builder cannot hold it).
 */
async function buildCjs(outFile, { lazyChildProcess = false } = {}) {
  const plugin = {
    name: 's4-cjs',
    setup(b) {
      b.onResolve({ filter: ABSENT }, (a) => ({ path: a.path, namespace: 's4-absent' }));
      b.onLoad({ filter: /.*/, namespace: 's4-absent' }, (a) => ({ contents: `throw new Error(${JSON.stringify(`${a.path} is left out of qcop bundles`)});`, loader: 'js' }));
      b.onLoad({ filter: /\.ts$/ }, (a) => {
        if (!a.path.startsWith(RUNTIME)) return undefined;
        const source = fs.readFileSync(a.path, 'utf8');
        const contents = foldImportSpecifiers(cjsInterop(source), a.path);
        return contents === source ? undefined : { contents, loader: 'ts', resolveDir: path.dirname(a.path) };
      });
      if (!lazyChildProcess) return;
      b.onResolve({ filter: /^(node:)?child_process$/ }, () => ({ path: 'child_process', namespace: 's4-lazy' }));
      b.onLoad({ filter: /.*/, namespace: 's4-lazy' }, async () => {
        const real = await import('node:child_process');
        const names = Object.keys(real).filter((k) => k !== 'default' && typeof real[k] === 'function');
        return { contents: names.map((n) => `export function ${n}(...a) { return require('node:child_process').${n}(...a); }`).join('\n'), loader: 'js' };
      });
    },
  };
  await esbuild.build({
    entryPoints: [path.join(ROOT, 'targets/entry/daemon.ts')],
    outfile: outFile,
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${process.versions.node.split('.')[0]}`,
    minify: true,
    logLevel: 'silent',
    banner: { js: 'var __qcopMetaUrl=require("url").pathToFileURL(__filename).href;' },
    define: { 'import.meta.url': '__qcopMetaUrl', 'process.env.CBOR_NATIVE_ACCELERATION_DISABLED': '"true"' },
    plugins: [plugin],
  });
  return outFile;
}

const RUN_FOOTER = '\n;module.exports.main(process.argv.slice(2)).then((c)=>{process.exitCode=c});\n';

// Loads daemon.cjs through vm.Script with V8's code cache (daemon.cjs.cache), as v8-compile-cache does; with
// S4_PRODUCE_CODE_CACHE=1 it writes the cache once the broker listens (the functions compiled by then are in it).
const CACHE_LOADER = `'use strict';
const fs = require('fs'), path = require('path'), vm = require('vm'), { wrap } = require('module');
const file = path.join(__dirname, 'daemon.cjs'), cacheFile = file + '.cache';
const produce = process.env.S4_PRODUCE_CODE_CACHE === '1';
const cachedData = produce ? undefined : fs.readFileSync(cacheFile);
const script = new vm.Script(wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
if (cachedData && script.cachedDataRejected) process.stderr.write('s4: code cache rejected\\n');
const m = { exports: {} };
script.runInThisContext().call(m.exports, m.exports, require, m, file, __dirname);
if (produce) {
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (c, ...r) => {
    if (String(c).startsWith('qcopd: listening')) setImmediate(() => { fs.writeFileSync(cacheFile, script.createCachedData()); process.exit(0); });
    return write(c, ...r);
  };
}
m.exports.main(process.argv.slice(2)).then((c) => { process.exitCode = c; });
`;

// The snapshot builder runs the entry as a script with a require() for built-in modules only (no module/exports).
const SNAPSHOT_PRELUDE = 'var module={exports:{}},exports=module.exports;\n';
// In the deserialized main, process.argv is [node, ...what follows `--`]; the flags must follow `--`
// or node takes --socket as its own option.
const SNAPSHOT_FOOTER = `
;(function () {
  const main = module.exports.main;
  require('v8').startupSnapshot.setDeserializeMainFunction(() => {
    const argv = process.argv.slice(1);
    if (argv[0] === '--') argv.shift();
    main(argv).then((c) => { process.exitCode = c; }, (e) => { process.stderr.write(String((e && e.stack) || e) + '\\n'); process.exitCode = 1; });
  });
})();
`;

function run(args, opts = {}) {
  return spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 120000, ...opts });
}

/** Waits until `child` has written a V8 coverage file into `dir` (bench wrapper: at "qcopd: listening"). */
async function waitCoverage(dir, child, timeoutMs = 15000) {
  const t0 = Date.now();
  for (;;) {
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
    if (files.length) {
      await sleep(50); // written synchronously by takeCoverage(); let the write finish
      return files.flatMap((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')).result);
    }
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited before listening: ${lastLines(child.stderrText())}`);
    if (Date.now() - t0 > timeoutMs) throw new Error('no coverage after 15 s');
    await sleep(20);
  }
}

// Runs a daemon command with V8 coverage on and takes the coverage the moment the broker says it listens.
const COVERAGE_WRAPPER = `import v8 from 'node:v8';
import { pathToFileURL } from 'node:url';
const [target, ...flags] = process.argv.slice(2);
const write = process.stderr.write.bind(process.stderr);
process.stderr.write = (c, ...r) => { if (String(c).startsWith('qcopd: listening')) v8.takeCoverage(); return write(c, ...r); };
process.argv = [process.argv[0], target, ...flags];
await import(pathToFileURL(target).href);
`;

/** Scripts a daemon has compiled when it listens (V8 coverage): [{ file, functions }] for files on disk. */
async function loadedBeforeListen(work, tag, target) {
  const wrapper = path.join(work, 'coverage-wrapper.mjs');
  if (!fs.existsSync(wrapper)) fs.writeFileSync(wrapper, COVERAGE_WRAPPER);
  const dir = path.join(work, `coverage-${tag}`);
  const child = spawnServer([wrapper, target, '--socket', path.join(work, `cov-${tag}.sock`)], { NODE_V8_COVERAGE: dir });
  try {
    const scripts = await waitCoverage(dir, child);
    return scripts
      .filter((s) => s.url.startsWith('file:'))
      .map((s) => ({ file: new URL(s.url).pathname, functions: s.functions }))
      .filter((s) => s.file !== wrapper);
  } finally {
    await kill(child);
  }
}

/** Builds every variant; each gets `args(socket)` or `why` it could not be built, and what JS it loads. */
async function prepare(work) {
  const V = [
    { key: 'bare', qcop: false, label: '(a) bare node (bench/baseline/bare-listener.mjs)', args: (s) => [BARE, s], js: kb(size(BARE)) },
    { key: 'dist', label: '(b) bin/qcopd.js (dist/, one ESM file per module)', args: (s) => [QCOPD, '--socket', s] },
    { key: 'board', label: '(c) board bundle: qcopd.js → lib/daemon.mjs (ESM, split, minified)' },
    { key: 'cjs', label: '(d) one CJS file (esbuild, minified)' },
    { key: 'cache', label: '(e) = (d) + V8 code cache (vm.Script cachedData)' },
    { key: 'snap', label: '(f) = (d) in a V8 startup snapshot' },
    { key: 'snapbare', qcop: false, label: "(g) = (a) in a V8 startup snapshot (the snapshot's own cost)" },
  ];
  const by = Object.fromEntries(V.map((v) => [v.key, v]));
  const notes = [];

  // (b): what bin/qcopd.js loads before it listens.
  try {
    const files = await loadedBeforeListen(work, 'dist', QCOPD);
    by.dist.js = `${kb(files.reduce((n, f) => n + size(f.file), 0))} in ${files.length} files`;
    by.dist.coverage = files;
  } catch (e) {
    by.dist.js = `? (${e.message})`;
  }

  // (c): the project's own board build (scripts/build-target.mjs), as bench/run.mjs builds it.
  log('building the board bundle (scripts/build-target.mjs)');
  const qcopd = buildBundle(path.join(work, 'targets'));
  if (!qcopd) by.board.why = SYSTEMS['qcop-bundle'].why;
  else {
    by.board.args = (s) => [qcopd, '--socket', s];
    try {
      const files = await loadedBeforeListen(work, 'board', qcopd);
      by.board.js = `${kb(files.reduce((n, f) => n + size(f.file), 0))} in ${files.length} files`;
    } catch (e) {
      by.board.js = `? (${e.message})`;
    }
  }

  // (d): one CJS file, with prebuilds/ beside it for the native addon.
  const cjsDir = path.join(work, 'cjs');
  const sub = `${process.platform}-${process.arch}`;
  try {
    fs.mkdirSync(path.join(cjsDir, 'prebuilds', sub), { recursive: true });
    const addon = path.join(ROOT, 'prebuilds', sub, 'qcop_native.node');
    if (fs.existsSync(addon)) fs.copyFileSync(addon, path.join(cjsDir, 'prebuilds', sub, 'qcop_native.node'));
    else notes.push(`no prebuilds/${sub}/qcop_native.node: (d)–(f) run without the native addon`);
    const daemon = await buildCjs(path.join(cjsDir, 'daemon.cjs'));
    const runFile = path.join(cjsDir, 'run.cjs');
    fs.writeFileSync(runFile, fs.readFileSync(daemon, 'utf8') + RUN_FOOTER);
    by.cjs.args = (s) => [runFile, '--socket', s];
    by.cjs.js = kb(size(runFile));
  } catch (e) {
    by.cjs.why = `esbuild failed: ${lastLines(e.message)}`;
  }

  // (e): code cache produced by one run up to listen().
  if (by.cjs.why) by.cache.why = 'needs (d)';
  else {
    const loader = path.join(cjsDir, 'cached.cjs');
    fs.writeFileSync(loader, CACHE_LOADER);
    const sock = path.join(work, 'cache-produce.sock');
    const r = run([loader, '--socket', sock], { env: { ...process.env, S4_PRODUCE_CODE_CACHE: '1' }, timeout: 30000 });
    const cache = path.join(cjsDir, 'daemon.cjs.cache');
    if (r.status !== 0 || !fs.existsSync(cache)) by.cache.why = `producing the cache failed: ${lastLines(r.stderr) || r.error?.message || `exit ${r.status}`}`;
    else {
      by.cache.args = (s) => [loader, '--socket', s];
      by.cache.js = `${kb(size(loader) + size(path.join(cjsDir, 'daemon.cjs')))} + ${kb(size(cache))} cache`;
      by.cache.rejectedText = 's4: code cache rejected';
    }
  }

  // (f): snapshot of the CJS bundle; the blob is built by this node binary (it runs only on the same binary).
  if (by.cjs.why) by.snap.why = 'needs (d)';
  else {
    const tryBuild = async (lazy) => {
      const bundle = lazy ? await buildCjs(path.join(cjsDir, 'daemon-lazy-cp.cjs'), { lazyChildProcess: true }) : path.join(cjsDir, 'daemon.cjs');
      const entry = path.join(cjsDir, lazy ? 'snapshot-entry-lazy-cp.cjs' : 'snapshot-entry.cjs');
      fs.writeFileSync(entry, SNAPSHOT_PRELUDE + fs.readFileSync(bundle, 'utf8') + SNAPSHOT_FOOTER);
      const blob = path.join(cjsDir, lazy ? 'qcopd-lazy-cp.blob' : 'qcopd.blob');
      const t0 = Date.now();
      const r = run(['--snapshot-blob', blob, '--build-snapshot', entry], { cwd: cjsDir, timeout: 120000 });
      const ok = r.status === 0 && fs.existsSync(blob);
      return { ok, blob, ms: Date.now() - t0, why: ok ? '' : `${lastLines(r.stderr) || r.error?.message || ''} (exit ${r.status ?? r.signal})` };
    };
    let b = await tryBuild(false);
    if (!b.ok) {
      const plain = b.why;
      b = await tryBuild(true);
      if (b.ok) {
        by.snap.label += ', node:child_process made lazy';
        notes.push(`(f): on Node ${process.versions.node} the snapshot builder fails on the daemon as it is ("${plain}"): runtime/broker/durable/launch.ts imports node:child_process statically; this row's build requires it on first use instead (bench-side esbuild shim, runtime unchanged)`);
      } else b.why = `${plain}; with node:child_process lazy: ${b.why}`;
    }
    if (!b.ok) by.snap.why = `node --build-snapshot failed: ${b.why}`;
    else {
      by.snap.args = (s) => ['--snapshot-blob', b.blob, '--', '--socket', s];
      by.snap.js = `none (blob ${(size(b.blob) / MiB).toFixed(1)} MiB, built in ${(b.ms / 1000).toFixed(1)} s)`;
    }
  }

  // (g): the bare listener from a snapshot: what a user-land snapshot costs by itself.
  const bareEntry = path.join(work, 'bare-snapshot.cjs');
  fs.writeFileSync(bareEntry, BARE_SNAPSHOT);
  const bareBlob = path.join(work, 'bare.blob');
  const r = run(['--snapshot-blob', bareBlob, '--build-snapshot', bareEntry], { cwd: work, timeout: 60000 });
  if (r.status !== 0 || !fs.existsSync(bareBlob)) by.snapbare.why = `node --build-snapshot failed: ${lastLines(r.stderr) || r.error?.message || ''}`;
  else {
    by.snapbare.args = (s) => ['--snapshot-blob', bareBlob, '--', s];
    by.snapbare.js = `none (blob ${(size(bareBlob) / MiB).toFixed(1)} MiB)`;
  }
  return { variants: V, notes };
}

// bench/baseline/bare-listener.mjs as a snapshot entry: the socket is opened in the deserialized main.
const BARE_SNAPSHOT = `require('v8').startupSnapshot.setDeserializeMainFunction(() => {
  const argv = process.argv.slice(1);
  if (argv[0] === '--') argv.shift();
  const server = require('net').createServer((s) => s.destroy()).listen(argv[0]);
  const stop = () => { server.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
});
`;

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

/** Modules of the board bundle's daemon.mjs static graph (esbuild metafile), largest first, with what of them ran before listen() in bin/qcopd.js. */
async function lazyTable(work, distCoverage) {
  const target = BUNDLE_TARGETS[process.arch];
  if (!target) return `(no board profile for ${process.arch})`;
  const profile = loadProfiles()[target];
  const { included } = resolveChannels(profile);
  const { metafile } = await buildProgram(profile, path.join(work, 'meta'), included);
  const inputs = new Map();
  for (const o of eagerOutputs(metafile, 'daemon.mjs')) for (const [k, v] of Object.entries(metafile.outputs[o].inputs)) inputs.set(k, (inputs.get(k) ?? 0) + v.bytesInOutput);
  const ran = new Map();
  for (const s of distCoverage ?? []) {
    const rel = path.relative(path.join(ROOT, 'dist'), s.file);
    if (rel.startsWith('..')) continue;
    const fns = s.functions.filter((f) => !(f.functionName === '' && f.ranges[0].startOffset === 0)); // the module body
    ran.set(rel.replace(/\.js$/, '.ts'), { run: fns.filter((f) => f.ranges[0].count > 0).map((f) => `\`${f.functionName || '(anonymous)'}\``), total: fns.length });
  }
  const all = [...inputs].sort((a, b) => b[1] - a[1]);
  const total = all.reduce((n, [, b]) => n + b, 0);
  const bodyOnly = all.filter(([k]) => ran.get(k) && ran.get(k).run.length === 0);
  const lines = [
    `${all.length} modules, ${kb(total)} minified, in lib/daemon.mjs's static graph; ${bodyOnly.length} of them (${kb(bodyOnly.reduce((n, [, b]) => n + b, 0))}) had only their module body run before listen() (bin/qcopd.js --socket, V8 coverage); the 25 largest:`,
    '',
    '| module | bytes in the bundle | functions run before listen() / defined |',
    '|---|--:|---|',
  ];
  for (const [k, b] of all.slice(0, 25)) {
    const r = ran.get(k);
    const what = r ? `${r.run.length}/${r.total}${r.run.length ? `: ${r.run.slice(0, 4).join(', ')}${r.run.length > 4 ? ', …' : ''}` : ''}` : 'not in dist/';
    lines.push(`| ${k} | ${b} | ${what} |`);
  }
  return lines.join('\n');
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
