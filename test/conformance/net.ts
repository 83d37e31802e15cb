// Test helpers for carriers: spawned brokers with a TCP listener, free ports, throw-away certificates.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Proc, QCOPD, socketAnswers, tempDir, waitFor } from '../helpers/procs.js';

/** A token good enough for tests (PROTOCOL 7.4: 16–256 visible characters). */
export const TOKEN = 'test-token-0123456789abcdef';

export type TcpBroker = Proc & { socket: string; url: string };

/** Starts qcopd with extra flags and waits for its Unix socket and, with --tcp, its TCP URL. */
export async function spawnQcopd(args: string[], socket = path.join(tempDir(), 'qcop.sock'), env: NodeJS.ProcessEnv = {}): Promise<TcpBroker> {
  const p = new Proc(process.execPath, [QCOPD, '--socket', socket, ...args], env) as TcpBroker;
  p.socket = socket;
  const wantsTcp = args.includes('--tcp');
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`broker exited ${p.child.exitCode}: ${p.stderr}`);
    if (wantsTcp && !/listening on (tcp|tls):\/\//.test(p.stderr)) return false;
    return socketAnswers(socket);
  }, 10000, 'the broker');
  p.url = /listening on ((?:tcp|tls):\/\/\S+)/.exec(p.stderr)?.[1] ?? '';
  return p;
}

/** Stops a spawned broker and waits for it. */
export async function stop(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.kill(signal);
  await p.exited;
}

function tryPort(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port nobody listens on, below the kernel's ephemeral range (32768 and up), so that no
 * outgoing connection of a parallel test takes it between this check, a broker's start and
 * its restart on the same port.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await tryPort(port)) return port;
  }
}

export interface Certs {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Signed by another CA: must be refused. */
  rogueCert: string;
  rogueKey: string;
  rogueCa: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function signed(dir: string, name: string, cn: string, ca: string, ext?: string): void {
  openssl(dir, 'req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  const extArgs = ext ? ['-extfile', `${name}.ext`] : [];
  if (ext) fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', ...extArgs);
}

/** Generates a CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a rogue pair. */
export function makeCerts(): Certs {
  const dir = tempDir();
  for (const ca of ['ca', 'rogue-ca']) {
    openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=qcop test ${ca}`);
  }
  signed(dir, 'server', 'localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  signed(dir, 'client', 'board-7', 'ca', 'extendedKeyUsage=clientAuth\n');
  signed(dir, 'rogue', 'intruder', 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
  const f = (n: string) => path.join(dir, n);
  return {
    dir, ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'),
    clientKey: f('client.key'), rogueCert: f('rogue.crt'), rogueKey: f('rogue.key'), rogueCa: f('rogue-ca.crt'),
  };
}

/** A TCP relay in front of a broker; while closed it hangs up on every new connection at once. */
export class Gate {
  open = true;
  readonly port: Promise<number>;
  private readonly server: net.Server;
  private readonly live = new Set<net.Socket>();

  constructor(target: () => number) {
    this.server = net.createServer((a) => {
      a.on('error', () => {});
      if (!this.open) return void a.destroy();
      const b = net.createConnection(target(), '127.0.0.1');
      b.on('error', () => a.destroy());
      a.on('close', () => b.destroy());
      b.on('close', () => a.destroy());
      a.pipe(b).pipe(a);
      this.live.add(a);
      a.on('close', () => this.live.delete(a));
    });
    this.port = new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }

  /** Cuts every relayed connection (the broker behind stays up). */
  cut(): void {
    for (const s of this.live) s.destroy();
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}
