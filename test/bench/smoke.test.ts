// The benchmark runs once with tiny counts (--smoke) so its code cannot rot; no speed is asserted here.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCENARIOS = ['S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7'];

function runBench(out: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench/run.mjs'), '--smoke', '--out', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('bench --smoke runs every scenario and writes numeric results, RESULTS.md and the S6 chart', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-bench-smoke-'));
  try {
    const { code, stderr } = await runBench(out);
    assert.is(code, 0, `bench --smoke exited ${code}:\n${stderr.slice(-4000)}`);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    for (const id of SCENARIOS) {
      const sc = results.scenarios[id];
      assert.ok(sc, `${id} is missing from results.json`);
      assert.ok(sc.runs.length > 0, `${id} has no runs`);
      assert.equal(sc.runs.filter((r: { error?: string }) => r.error), [], `${id} has failed runs`);
      for (const run of sc.runs) {
        const values = Object.values(run.metrics as Record<string, unknown>);
        assert.ok(values.length > 0, `${id} ${run.variant} has no metrics`);
        for (const v of values) assert.type(v, 'number', `${id} ${run.variant}: ${JSON.stringify(run.metrics)}`);
        assert.ok(values.some((v) => Number.isFinite(v)), `${id} ${run.variant} has no finite metric`);
      }
      const medians = Object.values(sc.summary as Record<string, Record<string, { median: number }>>).flatMap((m) => Object.values(m).map((s) => s.median));
      assert.ok(medians.some((x) => Number.isFinite(x)), `${id} summary has no numeric median`);
    }
    const md = fs.readFileSync(path.join(out, 'RESULTS.md'), 'utf8');
    for (const id of SCENARIOS) assert.ok(md.includes(`## ${id}:`), `RESULTS.md lacks ${id}`);
    assert.match(fs.readFileSync(path.join(out, 's6-size-sweep.svg'), 'utf8'), /^<svg[^>]*>[\s\S]*<polyline[\s\S]*<\/svg>\s*$/);
    // Nothing left behind: the benchmark removes its temp folder of sockets.
    const tmp = /temp folder (\S+)/.exec(stderr)?.[1];
    assert.ok(tmp, 'bench did not name its temp folder');
    assert.not.ok(fs.existsSync(tmp!), `${tmp} was left behind`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test.run();
