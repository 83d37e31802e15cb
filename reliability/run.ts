// `npm run reliability`: runs the scenarios of reliability/scenarios/ against real qcopd processes and writes
// docs/RELIABILITY.md, one table row per scenario. `--short` is the form `npm test` runs (test/reliability/short.test.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, cleanupAll } from './lib/procs.js';
import type { Row, RunContext } from './lib/row.js';
import { describeRows, renderTable } from './lib/table.js';
import { exhaustDisk, exhaustFds, exhaustShm } from './scenarios/exhaust.js';
import { fuzz } from './scenarios/fuzz.js';
import { restart } from './scenarios/restart.js';
import { soak } from './scenarios/soak.js';
import { storm } from './scenarios/storm.js';

const SCENARIOS: Record<string, (ctx: RunContext) => Promise<Row>> = {
  storm, restart, fuzz, soak, 'exhaust-fds': exhaustFds, 'exhaust-shm': exhaustShm, 'exhaust-disk': exhaustDisk,
};

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const short = process.argv.includes('--short');
const seed = Number(arg('--seed') ?? ((Date.now() ^ (process.pid << 8)) >>> 0)) >>> 0;
const soakMinutes = Number(arg('--soak-minutes') ?? (short ? 10 / 60 : 30));
const out = arg('--out') ?? (short ? null : path.join(ROOT, 'docs/RELIABILITY.md'));
const only = arg('--only')?.split(',').flatMap((s) => (s === 'exhaust' ? ['exhaust-fds', 'exhaust-shm', 'exhaust-disk'] : [s]));
for (const name of only ?? []) if (!SCENARIOS[name]) throw new Error(`unknown scenario '${name}' (${Object.keys(SCENARIOS).join(', ')})`);
if (!Number.isFinite(soakMinutes) || soakMinutes <= 0) throw new Error('--soak-minutes must be a positive number');

const log = (text: string) => process.stderr.write(`reliability: ${text}\n`);
const ctx: RunContext = { short, seed, soakMinutes, log };
const command = `node --import tsx reliability/run.ts ${process.argv.slice(2).filter((a, i, all) => a !== '--seed' && all[i - 1] !== '--seed').join(' ')} --seed ${seed}`.replace(/\s+/g, ' ');
log(`${short ? 'short' : 'long'} form, seed ${seed} (repeat with --seed ${seed})`);
const startedAt = new Date();
const rows: Row[] = [];
for (const [name, run] of Object.entries(SCENARIOS)) {
  if (only && !only.includes(name)) continue;
  log(`${name}: start`);
  const t0 = Date.now();
  // A scenario that hangs is a failed row, not a run that never ends: its processes are killed and the next one starts.
  const limitMs = (short ? 180 : 1200) * 1000 + (name === 'soak' ? soakMinutes * 60_000 : 0);
  let watchdog: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    watchdog = setTimeout(() => reject(new Error(`hung: no result within ${limitMs / 1000} s`)), limitMs);
  });
  let row: Row;
  try {
    row = await Promise.race([run(ctx), hung]);
  } catch (e) {
    cleanupAll();
    row = { scenario: name, seconds: 0, did: 'did not finish', figures: [], failed: [`threw: ${(e as Error).stack?.split('\n').slice(0, 3).join(' ') ?? e}`] };
  } finally {
    clearTimeout(watchdog);
  }
  row.seconds = Math.round((Date.now() - t0) / 1000);
  rows.push(row);
  log(`${name}: ${row.failed.length ? 'FAIL: ' + row.failed.join('; ') : 'pass'} (${row.seconds} s)`);
  log(`  ${row.figures.join('\n  ')}`);
}
cleanupAll();
const minutes = ((Date.now() - startedAt.getTime()) / 60000).toFixed(1);
const meta = {
  run: `${short ? 'short' : 'long'} form, started ${startedAt.toISOString()}, ${minutes} minutes`,
  command: `\`${command}\` (\`--seed ${seed}\` repeats the harness's choices and the fuzz inputs)`,
  machine: `${os.cpus().length} × ${os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ') ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}, uid ${process.getuid?.() ?? '?'}`,
  result: `${rows.filter((r) => r.failed.length === 0).length} passed, ${rows.filter((r) => r.failed.length > 0).length} failed`,
};
const text = renderTable(meta, rows) + describeRows();
if (out) {
  fs.writeFileSync(out, text);
  log(`wrote ${out}`);
} else {
  process.stdout.write(text);
}
process.exitCode = rows.some((r) => r.failed.length > 0) ? 1 : 0;
