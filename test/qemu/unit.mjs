// Owns: compiling the in-process test files (uvu) into Node 18 bundles and running them under QEMU, one emulated Node per file.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildTestBundle, REPO } from '../../targets/build/bundle.mjs';
import { run } from './harness.mjs';

// Files that start other processes need binfmt or host launching; the multi-process scenarios
// in run.mjs cover that ground, so only in-process files are compiled here.
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

/** The in-process test files of test/ (relative paths), and those left out because they spawn processes. */
export function selectUnitTests() {
  const all = collect(join(REPO, 'test'));
  const chosen = [], spawning = [];
  for (const f of all) (SPAWNS.test(readFileSync(f, 'utf8')) ? spawning : chosen).push(relative(REPO, f));
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
