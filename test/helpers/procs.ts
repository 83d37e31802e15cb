// Test plumbing: temporary folders, spawned brokers and client processes, all cleaned up even on failure.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const QCOP = path.join(ROOT, 'bin/qcop.js');
export const QCOPD = path.join(ROOT, 'bin/qcopd.js');
export const FIXTURES = path.join(ROOT, 'test/fixtures');

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

/**
 * Kills every process and removes every folder this test file created. The promise resolves once
 * those processes are gone (a test that measures a shared resource, such as /dev/shm space, awaits it).
 */
export function cleanup(): Promise<void> {
  const gone = [...children]
    .filter((c) => c.exitCode === null && c.signalCode === null)
    .map((c) => new Promise<void>((resolve) => c.once('exit', () => resolve())));
  for (const c of children) {
    try {
      if (c.exitCode === null && c.signalCode === null) {
        process.kill(c.pid!, 'SIGCONT');
        c.kill('SIGKILL');
      }
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs.clear();
  return Promise.all(gone).then(() => undefined);
}
process.on('exit', cleanup);

export function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-test-'));
  dirs.add(d);
  return d;
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A spawned process with its output collected line by line. */
export class Proc {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  private readonly parsed: any[] = [];
  stderr = '';
  private buf = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(this.child);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.lines.push(line);
        if (line.startsWith('{') || line.startsWith('[')) {
          try {
            this.parsed.push(JSON.parse(line));
          } catch {
            // not JSON after all
          }
        }
        this.buf = this.buf.slice(i + 1);
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
    this.child.stdin!.on('error', () => {});
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Parsed JSON lines so far. */
  json(): any[] {
    return this.parsed;
  }

  /** Waits for a JSON line satisfying `pred`; returns it. */
  async waitJson(pred: (v: any) => boolean, timeoutMs = 5000, what = 'a line'): Promise<any> {
    let found: any;
    await waitFor(() => {
      found = this.json().find(pred);
      return found !== undefined;
    }, timeoutMs, `${what} from pid ${this.pid} (stderr: ${this.stderr.slice(-500)})`);
    return found;
  }

  /** Sends one command line to a fixture client. */
  command(cmd: Record<string, unknown>): void {
    this.child.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    try {
      this.child.kill(signal);
    } catch {
      // gone
    }
  }
}

/** Starts `qcopd` on a socket in a new temporary folder and waits until it accepts connections. */
export async function spawnBroker(args: string[] = [], socket?: string): Promise<Proc & { socket: string }> {
  const sock = socket ?? path.join(tempDir(), 'qcop.sock');
  const p = new Proc(process.execPath, [QCOPD, '--socket', sock, ...args]) as Proc & { socket: string };
  p.socket = sock;
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`broker exited: ${p.stderr}`);
    return socketAnswers(sock);
  }, 10000, 'the broker socket');
  return p;
}

/** Starts the scriptable client fixture (test/fixtures/client.mjs) and waits for its hello. */
export async function spawnClient(socket: string, name: string): Promise<Proc> {
  const p = new Proc(process.execPath, [path.join(FIXTURES, 'client.mjs'), socket, name]);
  await p.waitJson((v) => v.ev === 'ready', 10000, 'client ready');
  return p;
}

/** Runs the `qcop` CLI to completion. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, input?: Buffer | string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new Proc(process.execPath, [QCOP, ...args], env);
  if (input !== undefined) p.child.stdin!.end(input);
  else p.child.stdin!.end();
  const { code } = await p.exited;
  return { code, stdout: p.lines.join('\n') + (p.lines.length ? '\n' : ''), stderr: p.stderr };
}
