#!/usr/bin/env node
// Owns: `npm run build:target -- <name>|all`: one deployable folder and tarball per board profile in out/targets/, and the size table.
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildLaunchers, buildProgram, eagerOptionalInputs, eagerOutputs, REPO, resolveChannels } from '../targets/build/bundle.mjs';
import { copySerialNative, loadCheck, sizes, sourceNative, tarball, verifyUnit, writeFiles } from '../targets/build/assemble.mjs';
import { loadProfiles } from '../targets/build/profiles.mjs';

const USAGE = `usage: npm run build:target -- <name>... | all [--out DIR] [--no-tar] [--no-load-check]
  writes out/targets/<name>/ and out/targets/<name>.tar.gz per board profile (targets/<name>.json)`;

function parseArgs(argv) {
  const opts = { names: [], out: join(REPO, 'out/targets'), tar: true, loadCheck: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') opts.out = argv[++i];
    else if (a === '--no-tar') opts.tar = false;
    else if (a === '--no-load-check') opts.loadCheck = false;
    else if (a === '-h' || a === '--help') { console.log(USAGE); process.exit(0); }
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else opts.names.push(a);
  }
  return opts;
}

function usage(why, known) {
  console.error(`build-target: EINVAL: ${why}`);
  if (known) console.error(`known targets: ${known.join(', ')} (or all)`);
  console.error(USAGE);
  process.exit(2);
}

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

async function buildOne(profile, opts, version) {
  const t0 = Date.now();
  const outDir = join(opts.out, profile.name);
  const notes = [];
  const { included, warnings } = resolveChannels(profile);
  for (const w of warnings) console.error(`build-target: ${profile.name}: warning: ${w}`);
  const native = sourceNative(profile);
  rmSync(outDir, { recursive: true, force: true });
  rmSync(`${outDir}.tar.gz`, { force: true });
  mkdirSync(outDir, { recursive: true });

  await buildLaunchers(profile, outDir);
  const program = await buildProgram(profile, outDir, included);
  for (const w of program.warnings) console.error(`build-target: ${profile.name}: warning: ${w}`);
  const eager = eagerOptionalInputs(program.metafile);
  if (eager.length) throw new Error(`optional channel code would load at broker start: ${eager.slice(0, 5).join(', ')}`);

  const nativeDir = join(outDir, 'prebuilds', `linux-${profile.arch}`);
  mkdirSync(nativeDir, { recursive: true });
  copyFileSync(native.file, join(nativeDir, 'qcop_native.node'));
  if (included.includes('serial')) for (const w of copySerialNative(profile, outDir)) console.error(`build-target: ${profile.name}: warning: ${w}`);
  const loaded = opts.loadCheck ? loadCheck(profile, nativeDir) : 'skipped (--no-load-check)';
  notes.push(`native ${native.info.machineName}${native.info.cpuArchName ? ` ${native.info.cpuArchName}` : ''}: ${loaded}`);

  writeFiles(profile, outDir, included, version);
  const unitProblems = verifyUnit(outDir);
  if (unitProblems.length) throw new Error(`qcopd.service: ${unitProblems.join('; ')}`);
  const size = sizes(outDir);
  size.startJs = eagerOutputs(program.metafile).reduce((n, o) => n + program.metafile.outputs[o].bytes, 0);
  size.startJs += ['qcop.js', 'qcopd.js'].reduce((n, f) => Math.max(n, statSync(join(outDir, f)).size), 0);
  const tgz = opts.tar ? tarball(outDir) : 0;
  const overBudget = size.js > profile.budget.jsBytes;
  return { profile, outDir, included, size, tgz, overBudget, notes, ms: Date.now() - t0 };
}

function printTable(rows) {
  const head = ['target', 'JS', 'JS at start', 'native', 'total', 'maps', 'tar.gz', 'JS budget', 'channels'];
  const lines = rows.map((r) => [
    r.profile.name, kib(r.size.js), kib(r.size.startJs), kib(r.size.native), kib(r.size.js + r.size.native), kib(r.size.maps),
    r.tgz ? kib(r.tgz) : '-', `${kib(r.profile.budget.jsBytes)}${r.overBudget ? ' OVER' : ''}`,
    r.included.length ? r.included.join(',') : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (l) => l.map((c, i) => (i === 0 || i === l.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  console.log(fmt(head));
  for (const l of lines) console.log(fmt(l));
  console.log('JS: every .js/.mjs file (launchers, program, carrier chunks), checked against the budget; JS at start: what qcopd.js loads');
  console.log('with no carrier configured; total = JS + native; maps ship for stack traces (node --enable-source-maps) and are not loaded otherwise.');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let profiles;
  try {
    profiles = loadProfiles();
  } catch (e) {
    console.error(`build-target: EINVAL: ${e.message}`);
    process.exit(2);
  }
  const known = Object.keys(profiles);
  if (!opts.names.length) usage('no target named', known);
  const names = opts.names.includes('all') ? known : opts.names;
  const unknown = names.filter((n) => !profiles[n]);
  if (unknown.length) usage(`unknown target ${unknown.join(', ')}`, known);

  const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version;
  const rows = [];
  let failed = 0;
  for (const name of names) {
    try {
      const r = await buildOne(profiles[name], opts, version);
      rows.push(r);
      console.error(`build-target: ${name}: ${relative(process.cwd(), r.outDir) || '.'} in ${r.ms} ms; ${r.notes.join('; ')}`);
    } catch (e) {
      failed++;
      const msg = e.errors ? e.errors.map((x) => `${x.location ? `${x.location.file}:${x.location.line}: ` : ''}${x.text}`).join('; ') : e.message;
      console.error(`build-target: ${name}: FAILED: ${msg}`);
    }
  }
  if (rows.length) printTable(rows);
  for (const r of rows.filter((x) => x.overBudget)) {
    failed++;
    console.error(`build-target: ${r.profile.name}: FAILED: JS is ${r.size.js} bytes, over the budget of ${r.profile.budget.jsBytes} in targets/${r.profile.name}.json`);
  }
  process.exit(failed ? 1 : 0);
}

main();
