// Owns: process plumbing for the QEMU suite: spawning emulated or host processes with timeouts, reading their JSON lines, killing every one of them, temp dirs, and the ok/FAIL tally.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const children = new Set();
const tempDirs = new Set();

/** A temp dir removed by cleanup(). */
export function tempDir(prefix = 'qcop-qemu-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/**
 * Starts a process in its own process group; resolves nothing. The handle has `lines` (stdout
 * lines so far), `stderr`, `exited` (a promise of { code, signal, ms }), waitLine(pred, ms),
 * write(text), end() and kill(signal). It is SIGKILLed after `timeoutMs` whatever happens.
 */
export function start(cmd, args, { timeoutMs = 120000, env, cwd } = {}) {
  const t0 = Date.now();
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...env }, cwd });
  const h = { child, lines: [], stdout: '', stderr: '', startedAt: t0, waiters: [] };
  children.add(h);
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    h.stdout += d;
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      h.lines.push(line);
      for (const w of [...h.waiters]) w(line);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { h.stderr += d; for (const w of [...h.waiters]) w(null); });
  child.stdin.on('error', () => {});
  const timer = setTimeout(() => h.kill('SIGKILL'), timeoutMs);
  h.exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (buf) { h.lines.push(buf); buf = ''; }
      children.delete(h);
      try { process.kill(-child.pid, 'SIGKILL'); } catch {}
      for (const w of [...h.waiters]) w(null);
      resolve({ code, signal, ms: Date.now() - t0 });
    });
    child.on('error', (err) => { h.stderr += String(err); });
  });
  h.done = false;
  h.exited.then(() => { h.done = true; });
  h.kill = (signal = 'SIGTERM') => { try { process.kill(-child.pid, signal); } catch {} };
  h.write = (text) => { try { child.stdin.write(text); } catch {} };
  h.end = () => { try { child.stdin.end(); } catch {} };
  /** Resolves with the first stdout line (parsed JSON when it parses) matching pred, or rejects after ms / at exit. */
  h.waitLine = (pred, ms = 60000) => new Promise((resolve, reject) => {
    const test = (line) => {
      let v = line;
      try { v = JSON.parse(line); } catch {}
      return pred(v, line) ? v : undefined;
    };
    for (const l of h.lines) { const v = test(l); if (v !== undefined) return resolve(v); }
    const timer2 = setTimeout(() => { done(); reject(new Error(`timeout after ${ms} ms waiting for output; stdout=${JSON.stringify(h.lines.slice(-5))} stderr=${JSON.stringify(h.stderr.slice(-400))}`)); }, ms);
    const w = (line) => {
      if (line !== null) { const v = test(line); if (v !== undefined) { done(); resolve(v); return; } }
      if (h.done || child.exitCode !== null) { done(); reject(new Error(`exited (${child.exitCode}) before the expected output; stdout=${JSON.stringify(h.lines.slice(-5))} stderr=${JSON.stringify(h.stderr.slice(-400))}`)); }
    };
    const done = () => { clearTimeout(timer2); h.waiters = h.waiters.filter((x) => x !== w); };
    h.waiters.push(w);
  });
  return h;
}

/** Runs a process to its end: { code, signal, ms, stdout, stderr }. */
export async function run(cmd, args, opts = {}) {
  const h = start(cmd, args, opts);
  h.end();
  const r = await h.exited;
  return { ...r, stdout: h.lines.join('\n'), stderr: h.stderr };
}

/** Resolves once a Unix socket accepts a connection; rejects after ms or when `alive()` turns false. */
export async function waitForSocket(path, ms, alive = () => true) {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = netConnect(path);
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`the broker exited before ${path} accepted connections`);
    if (Date.now() > until) throw new Error(`${path} did not accept connections within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Whether a command is on PATH; as root, installs the Debian package once when it is not. */
export function ensureTool(cmd, pkg = cmd) {
  const has = () => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  if (has()) return true;
  if (process.getuid?.() !== 0) return false;
  spawnSync('sh', ['-c', `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg} || (apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg})`], { stdio: 'ignore', timeout: 300000 });
  return has();
}

/** Resolves once pred() is true, polling; rejects with `what` after ms. */
export async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timeout after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Kills every process still running and removes the temp dirs. */
export async function cleanup() {
  for (const h of [...children]) h.kill('SIGKILL');
  await Promise.all([...children].map((h) => Promise.race([h.exited, new Promise((r) => setTimeout(r, 2000))])));
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** The tally of checks: ok/FAIL lines as they happen, the closing `N passed, N failed`. */
export class Tally {
  passed = 0;
  failed = 0;
  failures = [];

  /** Runs one named check with a time limit; a throw or a timeout is a FAIL with its reason. */
  async check(name, fn, ms = 180000) {
    const t0 = Date.now();
    let timer;
    try {
      const note = await Promise.race([fn(), new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms); })]);
      this.passed++;
      console.log(`ok   ${name}${note ? `  (${note})` : ''}  ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return true;
    } catch (e) {
      this.failed++;
      this.failures.push(name);
      console.log(`FAIL ${name}: ${String(e?.message ?? e).split('\n').join('\n     ')}`);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Counts a result decided elsewhere. */
  record(name, ok, note) {
    if (ok) this.passed++; else { this.failed++; this.failures.push(name); }
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${note ? `  ${ok ? `(${note})` : `: ${note}`}` : ''}`);
  }
}

/** Throws with a message unless cond holds. */
export function expect(cond, message) {
  if (!cond) throw new Error(message);
}
