#!/usr/bin/env node
// Runs every test file in its own Node process (uvu inside), two at a time, and prints "N passed, N failed".
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const JOBS = Number(process.env.QCOP_TEST_JOBS || 2);
const FILE_TIMEOUT_MS = Number(process.env.QCOP_TEST_TIMEOUT_MS || 240_000);
// Suites with their own runners (QEMU, packaging) are run by .ci/run, not here.
const EXCLUDE = new Set(['qemu', 'pack', 'fixtures', 'helpers']);

function collect(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!EXCLUDE.has(entry.name)) out.push(...collect(p));
    } else if (entry.name.endsWith('.test.ts')) {
      out.push(p);
    }
  }
  return out.sort();
}

// System tools some tests use (socat, dbus-daemon, ...): installed with apt when root, else the script
// prints the exact command and the tests that need them fail saying so.
if (spawnSync('bash', [path.join(root, 'scripts/setup-system.sh')], { stdio: 'inherit' }).status !== 0) {
  console.error('warning: some system tools are missing; the tests that need them will fail and say what to install');
}

const filters = process.argv.slice(2);
const files = collect(path.join(root, 'test')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', CBOR_NATIVE_ACCELERATION_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // Anything the file left behind in its process group goes too.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      const text = strip(output);
      const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const passed = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
      let ok = Number.isFinite(passed) ? passed : 0;
      let failed = Number.isFinite(total) ? total - ok : 0;
      // A crash, a timeout or a missing summary is a failure of its own; a skipped test is not a pass.
      if (code !== 0 || signal || timedOut || !Number.isFinite(total) || total === 0) failed = Math.max(failed, 1);
      resolve({ file, passed: ok, failed, skipped, output: text, ms: Date.now() - started, timedOut, code, signal });
    });
  });
}

// tsx strips types without checking them: the tests, targets and reliability code are type-checked
// here, once, as one more result (tsconfig.test.json; the build already checked runtime/ and channels/).
function typecheck() {
  const started = Date.now();
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.test.json')], { cwd: root, encoding: 'utf8' });
  const failed = r.status === 0 ? 0 : 1;
  return { file: path.join(root, 'tsconfig.test.json'), passed: 1 - failed, failed, skipped: 0, output: `${r.stdout}${r.stderr}`, ms: Date.now() - started, timedOut: false, code: r.status, signal: r.signal };
}

// A file whose first lines say `@exclusive` runs alone, after the others: it checks machine-wide
// state (such as every stale shm segment) that a test running beside it would change.
const isExclusive = (f) => fs.readFileSync(f, 'utf8').split('\n', 5).some((l) => l.includes('@exclusive'));
const queue = files.filter((f) => !isExclusive(f));
const exclusive = files.filter(isExclusive);
const results = [];
const report = (r) => {
  results.push(r);
  const rel = path.relative(root, r.file);
  const status = r.failed ? 'FAIL' : 'ok  ';
  console.log(`${status} ${rel}  ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}  (${(r.ms / 1000).toFixed(1)} s)`);
  if (r.failed) {
    console.log(r.output.split('\n').map((l) => '    ' + l).join('\n'));
    if (r.timedOut) console.log(`    killed after ${FILE_TIMEOUT_MS} ms`);
    else if (r.code !== 0) console.log(`    exit code ${r.code}${r.signal ? ` signal ${r.signal}` : ''}`);
  }
};
async function worker() {
  while (queue.length) report(await runFile(queue.shift()));
}
if (filters.length === 0) report(typecheck());
await Promise.all(Array.from({ length: JOBS }, worker));
queue.push(...exclusive);
await worker();
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
