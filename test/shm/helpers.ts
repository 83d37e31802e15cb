// Test helpers for shared memory: unique keys per run, child processes with line-based handshakes, and cleanup.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../../runtime/native/index.js';
import { escapeKey } from '../../runtime/shm/names.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The fixture every child runs; its first argument picks the role. */
export const CHILD = join(here, 'fixtures', 'child.ts');
/** Key prefix unique to this test process: nothing else on the machine uses it. */
export const RUN = `qcop-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

let counter = 0;
/** A fresh key under this run's prefix. */
export function uniqueKey(name: string): string {
  return `${RUN}/${name}-${++counter}`;
}

/** A spawned child with its stdout split into lines. */
export interface Child {
  proc: ChildProcess;
  /** Resolves with the first line (already seen or future) for which `pred` holds. */
  line(pred: (l: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

const children = new Set<ChildProcess>();

/** Spawns `node --import tsx fixtures/child.ts <role> ...args`. */
export function spawnChild(role: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, role, ...args], {
    env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  const lines: string[] = [];
  const waiters: Array<{ pred: (l: string) => boolean; resolve: (l: string) => void }> = [];
  let err = '';
  let partial = '';
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    let i: number;
    while ((i = partial.indexOf('\n')) >= 0) {
      const l = partial.slice(0, i);
      partial = partial.slice(i + 1);
      lines.push(l);
      for (const w of waiters.splice(0)) (w.pred(l) ? w.resolve(l) : waiters.push(w));
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => { err += c; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => { children.delete(proc); resolve({ code, signal }); });
  });
  return {
    proc,
    exited,
    stderr: () => err,
    line(pred, timeoutMs = 20000) {
      const seen = lines.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`child ${role} gave no expected line; stderr: ${err}`)), timeoutMs);
        waiters.push({ pred, resolve: (l) => { clearTimeout(t); resolve(l); } });
        void exited.then(() => setTimeout(() => {
          clearTimeout(t);
          reject(new Error(`child ${role} exited before the expected line; stderr: ${err}`));
        }, 50));
      });
    },
  };
}

/** Kills every child still running (SIGKILL) and waits for them to be reaped. */
export async function killChildren(): Promise<void> {
  const all = [...children];
  await Promise.all(all.map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  })));
}

/** Removes every /dev/shm object (and its System V semaphore) this run created. */
export function purge(): void {
  const tag = escapeKey(RUN);
  for (const e of readdirSync('/dev/shm')) {
    if (!e.startsWith('qcop.') || !e.includes(tag)) continue;
    if (/^qcop\.\d+\.s\./.test(e)) {
      try {
        const semid = new Int32Array(readFileSync(`/dev/shm/${e}`).buffer.slice(0, 64))[11];
        native().semRemove(semid);
      } catch { /* already gone */ }
    }
    try { native().shmUnlink(`/${e}`); } catch { /* already gone */ }
  }
}

/** Names under /dev/shm that belong to this run. */
export function leftovers(): string[] {
  const tag = escapeKey(RUN);
  return readdirSync('/dev/shm').filter((e) => e.startsWith('qcop.') && e.includes(tag));
}

/** Milliseconds on a clock shared by every process of this machine. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}
