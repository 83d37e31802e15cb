// @exclusive — the short form of `npm run reliability`: kill storms, broker restarts, fuzz, a soak and
// resource exhaustion against real qcopd processes; it counts every shm object on the machine, so it runs alone.
// Each scenario's row of the table must pass; a failing row prints the harness's log and the row's reasons.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCENARIOS = ['storm', 'restart', 'fuzz', 'soak', 'exhaust-fds', 'exhaust-shm', 'exhaust-disk'];

interface Run { code: number | null; log: string; table: string }

function runShort(): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-rel-test-'));
  const out = path.join(dir, 'RELIABILITY.md');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'reliability/run.ts', '--short', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    child.on('close', (code) => {
      const table = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code, log, table });
    });
  });
}

let run: Run;
test.before(async () => {
  run = await runShort();
});

test('the short form writes the table and exits 0', () => {
  assert.ok(run.table.includes('| scenario |'), `no table written; log:\n${run.log.slice(-4000)}`);
  assert.match(run.table, /\| result \| 7 passed, 0 failed \|/, `log:\n${run.log.slice(-4000)}`);
  assert.is(run.code, 0, `exit ${run.code}; log:\n${run.log.slice(-4000)}`);
});

for (const name of SCENARIOS) {
  test(`row ${name} passes`, () => {
    const line = run.table.split('\n').find((l) => l.startsWith(`| ${name} (`));
    assert.ok(line, `no row for ${name}; log:\n${run.log.slice(-3000)}`);
    const cells = line!.split(' | ');
    assert.ok(cells.includes('pass'), `${name} failed: ${cells.slice(-2).join(' | ')}`);
  });
}

test.run();
