// A fresh socat pty pair per test (docs/PLATFORM-NOTES.md §7), which can vanish and come back.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir, waitFor } from '../helpers/procs.js';

export class PtyPair {
  readonly a: string;
  readonly b: string;
  private proc: ChildProcess | null = null;

  constructor(dir = tempDir()) {
    this.a = path.join(dir, 'ttyA');
    this.b = path.join(dir, 'ttyB');
  }

  /** Starts socat and waits for both links. */
  async start(): Promise<this> {
    const p = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d) => (err += d));
    this.proc = p;
    await waitFor(() => {
      if (p.exitCode !== null) throw new Error(`socat exited: ${err}`);
      return fs.existsSync(this.a) && fs.existsSync(this.b);
    }, 5000, 'the socat pty pair');
    return this;
  }

  /** Kills socat: both ptys disappear, as a USB adapter does when unplugged. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
    await waitFor(() => !fs.existsSync(this.a) && !fs.existsSync(this.b), 2000, 'the pty links to go');
  }
}
