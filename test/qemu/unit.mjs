// Owns: compiling the in-process test files (uvu) into Node 18 bundles and running them under QEMU, one emulated Node per file.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { buildTestBundle, REPO } from '../../targets/build/bundle.mjs';
import { run } from './harness.mjs';

// The protocol/unit suite (test/unit, or QCOP_QEMU_UNIT_DIRS=a,b). Files that start other
// processes would need tsx on ARM; the multi-process scenarios of scenarios.mjs cover that ground,
// so only in-process files are compiled here.
const SPAWNS = /child_process|helpers\/procs|fixtures\/client|spawn\(|execFile/;
const SKIP_DIRS = new Set(['qemu', 'pack', 'fixtures', 'helpers', 'bench']);

function collect(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) { if (!SKIP_DIRS.has(e.name)) out.push(...collect(p)); }
    else if (e.name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

// True when the file, or a local module it imports (helpers, fixtures), starts processes.
function spawnsProcesses(file, seen = new Set()) {
  if (seen.has(file) || !existsSync(file)) return false;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  if (SPAWNS.test(text)) return true;
  for (const m of text.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const base = resolve(dirname(file), m[1]);
    if (!base.startsWith(join(REPO, 'test'))) continue; // runtime code is what the test is about
    const candidates = [base, base.replace(/\.(m?js)$/, '.ts'), `${base}.ts`];
    if (candidates.some((c) => spawnsProcesses(c, seen))) return true;
  }
  return false;
}

/** The in-process test files of test/ (relative paths), and those left out because they spawn processes. */
export function selectUnitTests() {
  const roots = (process.env.QCOP_QEMU_UNIT_DIRS || 'test/unit').split(',');
  const all = roots.flatMap((r) => (existsSync(join(REPO, r)) ? collect(join(REPO, r)) : []));
  const chosen = [], spawning = [];
  for (const f of all) (spawnsProcesses(f) ? spawning : chosen).push(relative(REPO, f));
  return { chosen, spawning };
}

/** Bundles each file into outDir/<path>.mjs for Node 18; returns [{ file, bundle }] or throws naming the file. */
export async function bundleUnitTests(files, outDir) {
  const out = [];
  for (const file of files) {
    const bundle = join(outDir, file.replace(/\.ts$/, '.mjs'));
    try {
      await buildTestBundle(join(REPO, file), bundle, { node: '18' });
    } catch (e) {
      throw new Error(`${file} does not bundle for Node 18: ${e.errors?.map((x) => x.text).join('; ') ?? e.message}`);
    }
    out.push({ file, bundle });
  }
  return out;
}

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** Runs one bundled uvu file with the emulated Node: { passed, failed, total, ms, output }. */
export async function runUnitBundle(nodeCmd, bundle, timeoutMs = 180000) {
  const r = await run(nodeCmd[0], [...nodeCmd.slice(1), bundle], { timeoutMs, env: { FORCE_COLOR: '0', CBOR_NATIVE_ACCELERATION_DISABLED: 'true' } });
  const text = strip(`${r.stdout}\n${r.stderr}`);
  const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const passed = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? 0);
  let failed = Number.isFinite(total) ? total - passed : 1;
  if (r.code !== 0 || r.signal || !Number.isFinite(total) || total === 0) failed = Math.max(failed, 1);
  return { passed, failed, total, ms: r.ms, output: text, code: r.code, signal: r.signal };
}
