// The broker's TCP/TLS listener: authenticate each connection (token, certificate), then hand it over.
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Broker } from '../../runtime/index.js';
import type { TcpListenOptions } from './options.js';
import { PREAMBLE_VERSION, parseAuthLine, readLine, tokenMatches, verdictLine, type Verdict } from './preamble.js';
import { removeLocalToken, writeLocalToken } from './local-token.js';
import { peerIdentity } from './tls.js';

const MAX_PENDING = 64;

interface Peer {
  connection: number;
  remote: string;
  transport: 'tcp' | 'tls';
  identity?: string;
  /** The user it acts as under the broker's policy (SPEC §9), when one is configured. */
  uid?: number;
}

/** One listening socket of the broker: `--tcp HOST:PORT`, plain (token) or TLS. */
export class TcpListener {
  readonly refused = { token: 0, tls: 0, protocol: 0 };
  accepted = 0;
  /** Connections still in the preamble; beyond MAX_PENDING new ones are dropped at once. */
  private pending = 0;
  private readonly peers = new Map<net.Socket, Peer>();
  private server: net.Server | null = null;
  private address = '';
  private token: string | undefined;
  private port = 0;
  /** Where the generated token of a loopback listener is kept, if one was generated. */
  tokenFile: string | undefined;

  constructor(private readonly broker: Broker, private readonly opts: TcpListenOptions) {}

  /** The URL clients use, e.g. `tls://127.0.0.1:7411` (the real port when 0 was asked). */
  get url(): string {
    return this.address;
  }

  async listen(): Promise<void> {
    const o = this.opts;
    const server = o.tls
      ? tls.createServer({ cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca, requestCert: o.tls.requireClientCert, rejectUnauthorized: o.tls.requireClientCert })
      : net.createServer();
    if (o.tls) {
      server.on('secureConnection', (s: tls.TLSSocket) => void this.admit(s, 'tls'));
      server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
        this.refused.tls++;
        this.broker.log('warn', `tcp: refused ${remoteOf(s)}: EACCES TLS handshake failed: ${err.message}`);
        s.destroy();
      });
    } else {
      server.on('connection', (s: net.Socket) => void this.admit(s, 'tcp'));
    }
    server.on('error', (err) => this.broker.acceptFailed(err, 'tcp'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address() as net.AddressInfo;
    this.address = `${o.tls ? 'tls' : 'tcp'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    this.server = server;
    this.port = a.port;
    this.token = o.token;
    if (o.localToken) {
      try {
        const local = writeLocalToken(a.port);
        this.token = local.token;
        this.tokenFile = local.file;
      } catch (err) {
        this.server = null;
        await new Promise<void>((r) => server.close(() => r()));
        throw err;
      }
    }
  }

  /** PROTOCOL 9: nothing is routed before the preamble and, over TLS, the certificate check passed. */
  private async admit(socket: net.Socket, transport: 'tcp' | 'tls'): Promise<void> {
    const remote = remoteOf(socket);
    socket.on('error', () => {});
    // Unauthenticated peers cost a socket each until the handshake timeout: cap them.
    if (this.pending >= MAX_PENDING) {
      this.refused.protocol++;
      this.broker.log('warn', `tcp: refused ${remote}: ELIMIT more than ${MAX_PENDING} connections in the preamble`);
      return void socket.destroy();
    }
    this.pending++;
    try {
      await this.admitted(socket, transport, remote);
    } finally {
      this.pending--;
    }
  }

  private async admitted(socket: net.Socket, transport: 'tcp' | 'tls', remote: string): Promise<void> {
    let verdict: Verdict;
    let rest: Buffer = Buffer.alloc(0);
    try {
      const got = await readLine(socket, this.broker.options.handshakeTimeoutMs);
      rest = got.rest;
      verdict = this.judge(got.line, rest.length);
    } catch (err) {
      verdict = { ok: false, code: 'EPROTO', text: (err as Error).message };
    }
    if (!verdict.ok) {
      if (verdict.code === 'EACCES') this.refused.token++;
      else this.refused.protocol++;
      this.broker.log('warn', `tcp: refused ${remote}: ${verdict.code} ${verdict.text}`);
      if (!socket.destroyed) socket.end(verdictLine(verdict));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.write(verdictLine(verdict));
    // SPEC §9: who this client is for the broker's policy: its certificate's user, else the token's, else nobody.
    const cn = socket instanceof tls.TLSSocket ? peerIdentity(socket) : null;
    const user = (cn !== null ? this.opts.certUsers.get(cn) : undefined) ?? (this.token !== undefined ? this.opts.tokenUser : null);
    const conn = this.broker.accept(socket, transport, user);
    if (!conn) return;
    this.accepted++;
    const peer: Peer = { connection: conn.id, remote, transport, ...(user ? { uid: user.uid } : {}) };
    if (cn) peer.identity = `CN=${cn}`;
    this.peers.set(socket, peer);
    socket.once('close', () => this.peers.delete(socket));
    this.broker.log('info', `tcp: connection ${conn.id} from ${remote}${peer.identity ? ` (${peer.identity})` : ''}`);
    socket.resume();
  }

  private judge(line: string, extra: number): Verdict {
    const auth = parseAuthLine(line);
    if (!auth.ok) return { ok: false, code: 'EPROTO', text: auth.why };
    if (auth.version !== PREAMBLE_VERSION) return { ok: false, code: 'ENOTSUP', text: `preamble version ${auth.version}; this broker speaks ${PREAMBLE_VERSION}` };
    // PROTOCOL 9.3: the client waits for the verdict; bytes before it are a violation, never routed.
    if (extra > 0) return { ok: false, code: 'EPROTO', text: 'data sent before the broker answered the preamble' };
    const expected = this.token;
    if (expected === undefined && this.opts.localToken) return { ok: false, code: 'EACCES', text: 'the listener has no token yet' };
    if (expected !== undefined) {
      if (auth.token === undefined) return { ok: false, code: 'EACCES', text: 'a token is required' };
      if (!tokenMatches(auth.token, expected)) return { ok: false, code: 'EACCES', text: 'wrong token' };
    }
    return { ok: true };
  }

  stats(): Record<string, unknown> {
    return { url: this.address, accepted: this.accepted, refused: { ...this.refused }, peers: [...this.peers.values()] };
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    if (this.tokenFile && this.token) removeLocalToken(this.port, this.token);
    for (const s of this.peers.keys()) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function remoteOf(s: net.Socket): string {
  return s.remoteFamily === 'IPv6' ? `[${s.remoteAddress}]:${s.remotePort}` : `${s.remoteAddress}:${s.remotePort}`;
}
