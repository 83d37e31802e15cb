// A real mosquitto on a free loopback port with a temporary config, and its command-line clients (test/channels/mqtt.test.ts, bench/fleet.mjs).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Proc, ROOT, tempDir, waitFor } from './procs.js';

const INSTALL = 'apt-get install -y mosquitto mosquitto-clients';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Makes sure mosquitto and its clients are there: installs them as root (scripts/setup-system.sh), else fails with the command. */
export function ensureMosquitto(): void {
  const ok = () => (has('mosquitto') || has('/usr/sbin/mosquitto')) && has('mosquitto_sub') && has('mosquitto_pub');
  if (ok()) return;
  if (process.getuid?.() === 0) {
    spawnSync('bash', [path.join(ROOT, 'scripts/setup-system.sh')], { stdio: 'inherit' });
    if (ok()) return;
  }
  throw new Error(`mosquitto is missing: install it with \`${INSTALL}\` (as root, scripts/setup-system.sh does)`);
}

export function mosquittoBinary(): string {
  return has('mosquitto') ? 'mosquitto' : '/usr/sbin/mosquitto';
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

export interface MosquittoOptions {
  /** Extra config lines for the listener (TLS files...). */
  listener?: string[];
  /** Refuse clients without a user name and password (then give `listener: ['password_file …']`). */
  noAnonymous?: boolean;
  /** Keep sessions and retained messages across a restart (persistence in the temp folder). */
  persistence?: boolean;
}

/** A mosquitto process; `restart()` stops it (SIGTERM: it saves its state) and starts it again on the same port. */
export class Mosquitto {
  proc!: Proc;
  readonly dir = tempDir();
  private constructor(readonly port: number, private readonly opts: MosquittoOptions) {}

  static async start(opts: MosquittoOptions = {}): Promise<Mosquitto> {
    ensureMosquitto();
    const m = new Mosquitto(await freePort(), opts);
    // As root mosquitto would drop to user `mosquitto`, who cannot read the 0700 temp folder.
    const lines = [...(process.getuid?.() === 0 ? ['user root'] : []), `listener ${m.port} 127.0.0.1`, `allow_anonymous ${opts.noAnonymous ? 'false' : 'true'}`, ...(opts.listener ?? []), 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice'];
    if (opts.persistence) lines.push('persistence true', `persistence_location ${m.dir}/`, 'autosave_interval 0');
    lines.push('max_queued_messages 100000', 'max_inflight_messages 0');
    fs.writeFileSync(path.join(m.dir, 'mosquitto.conf'), lines.join('\n') + '\n');
    await m.run();
    return m;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  private async run(): Promise<void> {
    this.proc = new Proc(mosquittoBinary(), ['-c', path.join(this.dir, 'mosquitto.conf')]);
    await waitFor(async () => {
      if (this.proc.child.exitCode !== null) throw new Error(`mosquitto exited: ${this.proc.stderr}`);
      return portAnswers(this.port);
    }, 15000, `mosquitto on port ${this.port}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.proc.child.exitCode !== null || this.proc.child.signalCode !== null) return;
    this.proc.kill(signal);
    await this.proc.exited;
  }

  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.run();
  }
}

/** `mosquitto_sub` as a back-end developer runs it; each received line is in `proc.lines`. */
export function mosquittoSub(port: number, args: string[]): Proc {
  return new Proc('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), ...args]);
}

/** `mosquitto_pub` to completion; throws with its stderr when it fails. */
export function mosquittoPub(port: number, args: string[]): void {
  execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 15000 });
}
