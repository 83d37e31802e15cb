// Fuzz at volume: a million random and mutated frames (test/fuzz/gen.ts, played by test/fuzz/play.ts)
// against one live qcopd process over many connections; 0 crashes, 0 hangs, the bystander unaffected. An input that
// crashes or hangs the broker is saved under test/fuzz/crashes, which test/fuzz/replay.test.ts replays ever after.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../../test/fuzz/raw.js';
import { playBytes, sessionRng } from '../../test/fuzz/play.js';
import { session } from '../../test/fuzz/gen.js';
import { Bystander } from '../lib/bystander.js';
import { ROOT, mib, rssOf, startQcopd, tempDir } from '../lib/procs.js';
import { check, newRow, type Row, type RunContext } from '../lib/row.js';

const CRASH_DIR = path.join(ROOT, 'test/fuzz/crashes');
const CONCURRENCY = 16;
const ANSWER_MS = 3000; // longer than the broker's 2 s handshake timeout
const MAX_FRAME = 1 << 20; // qcopd's default --max-frame-bytes

export async function fuzz(ctx: RunContext): Promise<Row> {
  const total = ctx.short ? 50_000 : 1_000_000;
  const row = newRow('fuzz');
  const socket = path.join(tempDir('fuzz'), 'qcop.sock');
  let broker = await startQcopd(socket);
  const rss0 = rssOf(broker.pid)?.rss ?? 0;
  let rssPeak = rss0;
  const bystander = await Bystander.start(socket, 'rel/fuzz-bystander', 5);
  const crashes: string[] = [];
  const problems: string[] = [];
  const outcomes: Record<string, number> = {};
  let hangs = 0;
  // Saved inputs first: every crash ever found must stay fixed.
  const saved = fs.existsSync(CRASH_DIR) ? fs.readdirSync(CRASH_DIR).filter((f) => f.endsWith('.bin')).sort() : [];
  for (const file of saved) {
    const bytes = fs.readFileSync(path.join(CRASH_DIR, file));
    const p = await playBytes(socket, { bytes, frames: 1, drip: false, label: 'saved' }, new Rng(1), MAX_FRAME, ANSWER_MS, `saved input ${file}`);
    problems.push(...p.problems);
    if (!broker.running) crashes.push(`saved input ${file} crashed the broker`);
  }
  let frames = 0;
  let connections = 0;
  let next = 0;
  const started = Date.now();
  const inFlight = new Map<number, Buffer>();
  const save = (index: number, why: string) => {
    const bytes = inFlight.get(index);
    if (!bytes) return;
    fs.mkdirSync(CRASH_DIR, { recursive: true });
    const file = path.join(CRASH_DIR, `rel-${ctx.seed}-${index}.bin`);
    fs.writeFileSync(file, bytes);
    crashes.push(`${why}: input saved as ${path.relative(ROOT, file)}`);
  };
  const worker = async () => {
    while (frames < total && crashes.length < 5) {
      const index = next++;
      const rng = sessionRng(ctx.seed, index);
      const s = session(rng, index, Math.min(400, total - frames));
      inFlight.set(index, s.bytes);
      frames += s.frames;
      connections++;
      try {
        const p = await playBytes(socket, s, rng, MAX_FRAME, ANSWER_MS, `connection ${index} (${s.label}, seed ${ctx.seed})`);
        const key = `${p.session.label}/${p.outcome}`;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        if (p.problems.length && problems.length < 20) problems.push(...p.problems.slice(0, 2));
        if (p.hung) {
          hangs++;
          if (hangs <= 3) save(index, `connection ${index} hung`);
        }
      } catch (e) {
        if (problems.length < 20) problems.push(`connection ${index}: ${(e as Error).message}`);
      }
      if (!broker.running) {
        save(index, `the broker exited (${broker.stderr.slice(-200)}) during connection ${index}`);
        broker = await startQcopd(socket); // keep going: count, save and report every crash
      }
      inFlight.delete(index);
      if (index % 200 === 0) {
        rssPeak = Math.max(rssPeak, rssOf(broker.pid)?.rss ?? 0);
        if (index % 2000 === 0) ctx.log(`fuzz: ${frames} frames, ${connections} connections`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (Date.now() - started) / 1000;
  const byOk = await bystander.stop();
  const rssEnd = rssOf(broker.pid)?.rss ?? 0;
  row.did = `${frames} frames over ${connections} connections in ${seconds.toFixed(0)} s (${Math.round(frames / seconds)} frames/s), seed ${ctx.seed}; ${saved.length} saved inputs replayed first`;
  row.figures.push(
    `outcomes ${Object.entries(outcomes).sort().map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `${crashes.length} crashes, ${hangs} hangs, ${problems.length} problems`,
    bystander.describe(),
    `broker RSS ${mib(rss0)} → peak ${mib(rssPeak)} → ${mib(rssEnd)} MiB`,
  );
  check(row, frames >= total, `only ${frames} of ${total} frames`);
  check(row, crashes.length === 0, `crashes: ${crashes.join('; ')}`);
  check(row, hangs === 0, `${hangs} hangs`);
  check(row, problems.length === 0, `problems: ${problems.slice(0, 5).join('; ')}`);
  check(row, byOk, `bystander: ${bystander.describe()}`);
  check(row, broker.running, 'the broker is not running at the end');
  await bystander.close();
  broker.kill('SIGTERM');
  await broker.exited;
  return row;
}
