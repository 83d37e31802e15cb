// S4 startup variants (bench/s4-startup.mjs): qcopd built as the board bundle, one CommonJS file, with a V8 code
// cache and as a V8 startup snapshot, each with what it loads; and which modules of the daemon bundle run before listen().
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { buildProgram, cjsInterop, eagerOutputs, foldImportSpecifiers, resolveChannels } from '../../targets/build/bundle.mjs';
import { loadProfiles } from '../../targets/build/profiles.mjs';
import { ROOT, kill, sleep, spawnServer } from './procs.mjs';
import { BARE, BUNDLE_TARGETS, QCOPD, SYSTEMS, buildBundle } from './systems.mjs';

export const MiB = 1 << 20;
const ABSENT = /^(cbor-extract|x11|usocket|abstract-socket)$/; // as targets/build/bundle.mjs: optional native helpers left out
const RUNTIME = path.join(ROOT, 'runtime') + path.sep;

export const log = (s) => process.stderr.write(`s4: ${s}\n`);
const size = (f) => fs.statSync(f).size;
export const kb = (n) => `${(n / 1000).toFixed(n < 10000 ? 1 : 0)} KB`;
/** The last lines of a process's stderr without Node's warnings: its error. */
export const lastLines = (s, n = 2) => String(s ?? '').trim().split('\n').filter((l) => !/Warning|trace-warnings|It may still work|To request support|^\s*$/.test(l)).slice(-n).join(' ').trim();

// ---------------------------------------------------------------------------------------------
// Builds

/**
 * The daemon (targets/entry/daemon.ts: `export { daemon as main }`) as one minified CommonJS file,
 * with the resolution rules of the board build that matter here (optional native helpers left
 * out, constant import() specifiers folded so lazily loaded runtime modules are bundled; in a CJS
 * file they stay lazy: esbuild wraps them in init functions). import.meta.url, empty in CJS, is
 * defined as this file's URL so runtime/native/index.ts finds prebuilds/ beside it (also inside a
 * snapshot, where process.argv[1] is not a script).
 */
async function buildCjs(outFile) {
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
export async function prepare(work) {
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
    const entry = path.join(cjsDir, 'snapshot-entry.cjs');
    fs.writeFileSync(entry, SNAPSHOT_PRELUDE + fs.readFileSync(path.join(cjsDir, 'daemon.cjs'), 'utf8') + SNAPSHOT_FOOTER);
    const blob = path.join(cjsDir, 'qcopd.blob');
    const t0 = Date.now();
    const r = run(['--snapshot-blob', blob, '--build-snapshot', entry], { cwd: cjsDir, timeout: 120000 });
    const b = { ok: r.status === 0 && fs.existsSync(blob), blob, ms: Date.now() - t0, why: '' };
    if (!b.ok) b.why = `${lastLines(r.stderr) || r.error?.message || ''} (exit ${r.status ?? r.signal})`;
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


/** Modules of the board bundle's daemon.mjs static graph (esbuild metafile), largest first, with what of them ran before listen() in bin/qcopd.js. */
export async function lazyTable(work, distCoverage) {
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
