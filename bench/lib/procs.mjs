// Process plumbing for the coordinator: every child and temp folder tracked, all removed on exit or Ctrl-C.
import { fork, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(BENCH, '..');
const WORKER = path.join(BENCH, 'worker/worker.mjs');
/** Extra node flags for workers, e.g. QCOP_BENCH_WORKER_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p' to profile the clients. */
const WORKER_NODE_ARGS = (process.env.QCOP_BENCH_WORKER_ARGS ?? '').split(' ').filter(Boolean);

const children = new Set();
const stopped = new Set();
let tmp = null;

export const nowNs = () => Number(process.hrtime.bigint());
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The run's temp folder under os.tmpdir(), created on first use. */
export function tmpDir() {
  if (!tmp) tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-bench-'));
  return tmp;
}

let sockSeq = 0;
/** A fresh socket path inside the temp folder. */
export function sockPath(tag) {
  return path.join(tmpDir(), `${(sockSeq++).toString(36)}-${tag}.sock`);
}

function track(child) {
  children.add(child);
  child.once('exit', () => {
    children.delete(child);
    stopped.delete(child.pid);
  });
  return child;
}

/** Kills one child (continuing it first if it was stopped) and waits for it to go. */
export function kill(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const gone = new Promise((r) => child.once('exit', r));
  try {
    if (stopped.has(child.pid)) process.kill(child.pid, 'SIGCONT');
    child.kill('SIGKILL');
  } catch {}
  return gone;
}

/**
 * Asks a child to end by itself (an IPC 'exit' for workers, SIGTERM for brokers, so the runtime
 * releases its sockets and shared memory), and kills it if it has not gone after `graceMs`.
 */
export async function stopGracefully(child, graceMs = 1000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  try {
    if (stopped.has(child.pid)) cont(child);
    if (child.connected) child.send({ op: 'exit' });
    else child.kill('SIGTERM');
  } catch {}
  const timer = new Promise((r) => setTimeout(r, graceMs, 'late'));
  if ((await Promise.race([gone, timer])) === 'late') await kill(child);
}

export function stop(child) {
  process.kill(child.pid, 'SIGSTOP');
  stopped.add(child.pid);
}

export function cont(child) {
  process.kill(child.pid, 'SIGCONT');
  stopped.delete(child.pid);
}

/** Every child still running continued (if stopped) and killed, synchronously. */
export function killAllSync() {
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGCONT');
      c.kill('SIGKILL');
    } catch {}
  }
  children.clear();
}

/** Synchronous last resort: every child killed, the temp folder removed. */
export function cleanupSync() {
  killAllSync();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = null;
}

export function installSignalCleanup(onAbort) {
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}: stopping every benchmark process and removing ${tmp ?? 'nothing'}\n`);
      onAbort?.();
      cleanupSync();
      process.exit(130);
    });
  }
}

/** Spawns a long-running server process (broker or reference) and returns the child. */
export function spawnServer(args, env = {}) {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
  child.stderrText = () => err;
  return track(child);
}

/** Resolves with the time (ms since `t0`) at which `socketPath` first accepts a connection. */
export async function waitAccepting(socketPath, t0, child, timeoutMs = 10000) {
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.createConnection(socketPath);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return (nowNs() - t0) / 1e6;
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`server exited before accepting: ${child.stderrText?.()}`);
    if ((nowNs() - t0) / 1e6 > timeoutMs) throw new Error(`${socketPath} does not accept connections after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * A benchmark worker process (bench/worker/worker.mjs) driven over IPC. `as` = { uid, gid } starts
 * it as that user (child_process: setgid, setuid, no supplementary groups; the coordinator must be
 * root): qcop-acl's clients, so that the broker's policy applies to them.
 */
export class Worker {
  constructor(cfg, as = {}) {
    this.cfg = cfg;
    this.inbox = [];
    this.waiters = [];
    const ids = as.uid === undefined ? {} : { uid: as.uid, gid: as.gid };
    this.child = track(fork(WORKER, [JSON.stringify(cfg)], { cwd: ROOT, execArgv: WORKER_NODE_ARGS, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], ...ids }));
    this.child.on('message', (m) => {
      const i = this.waiters.findIndex((w) => w.ev === m.ev);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
      else this.inbox.push(m);
    });
    this.exited = new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })));
    this.exited.then(({ code, signal }) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${cfg.role} ${cfg.name} exited (${signal ?? code}) while waiting for ${w.ev}`));
    });
  }

  get pid() {
    return this.child.pid;
  }

  /** Next message of type `ev` from the worker. */
  next(ev) {
    const i = this.inbox.findIndex((m) => m.ev === ev);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.reject(new Error(`${this.cfg.role} ${this.cfg.name} has exited`));
    return new Promise((resolve, reject) => this.waiters.push({ ev, resolve, reject }));
  }

  send(op, args = {}) {
    this.child.send({ op, ...args });
  }

  /** Sends `op` and waits for the answer `ev`, returning its result. */
  async ask(op, ev, args = {}) {
    const answer = this.next(ev);
    this.send(op, args);
    return (await answer).result;
  }

  kill() {
    return kill(this.child);
  }

  stop() {
    return stopGracefully(this.child);
  }
}

/** Starts workers (as the user `as` = { uid, gid } when given): all must be ready (listening or subscribed) before any links to its peers. */
export async function startWorkers(cfgs, as = {}) {
  const ws = cfgs.map((c) => new Worker(c, as));
  try {
    await Promise.all(ws.map((w) => w.next('ready')));
    await Promise.all(ws.map((w) => w.ask('link', 'linked')));
  } catch (err) {
    await Promise.all(ws.map((w) => w.kill()));
    throw err;
  }
  return ws;
}

/** RSS, peak RSS and private anonymous memory of a process, in bytes (Linux /proc). */
export function memoryOf(pid) {
  const out = { rss: NaN, hwm: NaN, pssAnon: NaN };
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    out.rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) * 1024;
    out.hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) * 1024;
  } catch {}
  try {
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    out.pssAnon = Number(/Pss_Anon:\s+(\d+)/.exec(rollup)?.[1]) * 1024;
  } catch {}
  return out;
}

/** CPU time (user + system) a process has used so far, in µs, from /proc/PID/stat (clock-tick resolution). */
export function cpuOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
  } catch {
    return NaN;
  }
}
const CLK_TCK = 100; // USER_HZ, 100 on every Linux the boards run

/** Samples a process's memory every `everyMs` until stopped; returns the peaks. */
export function memorySampler(pid, everyMs = 100) {
  const peak = { rss: 0, hwm: 0, pssAnon: 0 };
  const take = () => {
    const m = memoryOf(pid);
    for (const k of Object.keys(peak)) if (m[k] > peak[k]) peak[k] = m[k];
  };
  take();
  const timer = setInterval(take, everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
  };
}
