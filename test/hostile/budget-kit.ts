// What the frames/calls/budget/queue attacks share: a broker config file, the broker's figures, its resident memory.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tempDir } from '../helpers/procs.js';

/** Broker flags for a config file holding `options` (docs/CONFIG.md). */
export function configArgs(options: Record<string, unknown>): string[] {
  const file = path.join(tempDir(), 'qcopd.json');
  fs.writeFileSync(file, JSON.stringify(options));
  return ['--config', file];
}

/** `qcop stats` as a user would run it. */
export async function stats(socket: string): Promise<any> {
  const r = await runCli(['stats', '--socket', socket]);
  if (r.code !== 0) throw new Error(`qcop stats failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Resident memory of a process, from /proc (bytes). */
export function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** Samples `rss(pid)` until `done` settles; returns the peak. */
export async function peakRss(pid: number, done: Promise<unknown>): Promise<number> {
  let peak = rss(pid);
  let over = false;
  void done.finally(() => (over = true));
  while (!over) {
    peak = Math.max(peak, rss(pid));
    await new Promise((r) => setTimeout(r, 20));
  }
  return Math.max(peak, rss(pid));
}

export const MiB = 1 << 20;
