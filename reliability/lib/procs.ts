// Reliability harness plumbing: brokers and client processes it spawns, /proc figures, and cleanup of all of it
// (processes, temporary folders) at exit, on failure and on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DAEMON_NODE_FLAGS } from '../../targets/daemon-flags.mjs';
import { QCOPD, ROOT, socketAnswers, waitFor } from '../../test/helpers/procs.js';

// Where things are, waiting and dialling: the test suite's helpers (test/helpers/procs.ts).
export { QCOP, QCOPD, ROOT, socketAnswers, waitFor } from '../../test/helpers/procs.js';
export const LIB = path.join(ROOT, 'reliability/lib');

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const extra: Array<() => void> = [];

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn` at cleanup (a mount to undo, a segment to detach). */
export function atCleanup(fn: () => void): void {
  extra.push(fn);
}

/** Kills every process and removes every folder the harness made; safe to call more than once. */
export function cleanupAll(): void {
  for (const c of children) {
    try {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    } catch { /* gone */ }
  }
  children.clear();
  for (const fn of extra.splice(0).reverse()) {
    try { fn(); } catch { /* best effort */ }
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs.clear();
}
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanupAll();
    process.exit(130);
  });
}

export function tempDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `qcop-rel-${tag}-`));
  dirs.add(d);
  return d;
}

/** A spawned process whose stdout JSON lines are collected. */
export class Child {
  readonly child: ChildProcess;
  readonly json: any[] = [];
  stderr = '';
  private buf = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: boolean } = {}) {
    this.child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    children.add(this.child);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        if (line.startsWith('{')) {
          try { this.json.push(JSON.parse(line)); } catch { /* not JSON */ }
        }
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => { if (this.stderr.length < 8192) this.stderr += d.toString(); });
    this.child.stdin?.on('error', () => {});
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => {
      children.delete(this.child);
      resolve({ code, signal });
    }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitJson(pred: (v: any) => boolean, timeoutMs: number, what: string): Promise<any> {
    let found: any;
    await waitFor(() => {
      if (!this.running && (found = this.json.find(pred)) === undefined) throw new Error(`${what}: pid ${this.pid} exited (${this.stderr.slice(-300)})`);
      return (found = this.json.find(pred)) !== undefined;
    }, timeoutMs, `${what} from pid ${this.pid} (stderr: ${this.stderr.slice(-300)})`);
    return found;
  }

  command(cmd: Record<string, unknown>): void {
    this.child.stdin?.write(JSON.stringify(cmd) + '\n');
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    try { this.child.kill(signal); } catch { /* gone */ }
  }
}

/** A qcopd process on `socket`; resolves once it accepts connections. `wrap` runs it under a shell (ulimit, unshare). */
export async function startQcopd(socket: string, args: string[] = [], wrap?: (cmd: string[]) => string[]): Promise<Child> {
  const cmd = [process.execPath, ...DAEMON_NODE_FLAGS, QCOPD, '--socket', socket, '--log-level', 'error', ...args];
  const full = wrap ? wrap(cmd) : cmd;
  const p = new Child(full[0]!, full.slice(1));
  await waitFor(async () => {
    if (!p.running) throw new Error(`qcopd exited: ${p.stderr.slice(-500)}`);
    return socketAnswers(socket);
  }, 20000, 'the broker socket');
  return p;
}

/** Resident set of a process, in KiB (VmRSS), with its anonymous, file and shmem parts; null when it is gone. */
export function rssOf(pid: number): { rss: number; anon: number; file: number; shmem: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') };
  } catch {
    return null;
  }
}

/** Open descriptors of a process. */
export function fdsOf(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

export const mib = (kib: number) => (kib / 1024).toFixed(1);

/** p-th percentile (0..100) of numbers. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** Least-squares slope of (x, y) points. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
