// A link joins this broker to another over TCP/TLS: export patterns go there, import patterns come here.
import { connect, QcopError, type Broker, type Client, type ReceivedMessage } from '../../runtime/index.js';
import { encodedLikeSend } from '../shared/cbor.js';
import { EchoFilter, fingerprint } from '../shared/echo.js';
import { parseBrokerUrl } from './address.js';
import type { LinkOptions } from './options.js';

type Checked = LinkOptions & { export: string[]; import: string[]; maxBufferedBytes: number };

interface Queued {
  channel: string;
  message: string;
  data: unknown;
  fp: string;
  size: number;
}

/**
 * One link. Locally it is an in-process client of this broker; remotely an ordinary client of
 * the other broker, named `qcop-link:<this broker>`. The client library reconnects by itself and
 * re-registers the import listeners; before the first connection succeeds this class retries and
 * queues exports, bounded by `maxBufferedBytes`. Loops are prevented by echo suppression
 * (channels/shared/echo.ts): a message this link re-sent on one side is not carried back.
 */
export class Link {
  readonly url: string;
  private local: Client | null = null;
  private remote: Client | null = null;
  private localEcho: EchoFilter | null = null;
  private remoteEcho: EchoFilter | null = null;
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private retry: NodeJS.Timeout | null = null;
  private attempt = 0;
  private closed = false;
  private state: 'connecting' | 'up' | 'down' = 'connecting';
  private lastError = '';
  readonly counts = { exported: 0, imported: 0, lost: 0, unconfirmed: 0, disconnects: 0, declinedCalls: 0 };

  constructor(private readonly broker: Broker, private readonly opts: Checked) {
    this.url = parseBrokerUrl(opts.url).where;
  }

  async start(): Promise<void> {
    const local = await connect({ broker: this.broker, name: `qcop-link:${this.url}`, highWaterMark: this.opts.maxBufferedBytes });
    local.on('error', (err: Error) => this.broker.log('warn', `link ${this.url}: local: ${err.message}`));
    this.local = local;
    this.localEcho = new EchoFilter(() => local.flush());
    for (const p of this.opts.export) local.listen(p, (m) => this.fromLocal(m));
    void this.dial();
  }

  private transport(): Record<string, unknown> {
    const t: Record<string, unknown> = {};
    if (this.opts.token) t.token = this.opts.token;
    if (this.opts.tls?.ca) t.ca = this.opts.tls.ca;
    if (this.opts.tls?.cert) t.cert = this.opts.tls.cert;
    if (this.opts.tls?.key) t.key = this.opts.tls.key;
    return t;
  }

  private async dial(): Promise<void> {
    this.retry = null;
    if (this.closed) return;
    let remote: Client;
    try {
      remote = await connect({
        url: this.opts.url, transport: this.transport(), name: `qcop-link:${this.broker.options.name}`,
        highWaterMark: this.opts.maxBufferedBytes, reconnectMaxDelayMs: 2000,
      });
    } catch (err) {
      const why = (err as Error).message;
      if (why !== this.lastError) this.broker.log('warn', `link ${this.url}: cannot connect (retrying): ${why}`);
      this.lastError = why;
      const delay = Math.min(2000, 100 * 2 ** Math.min(this.attempt++, 5));
      this.retry = setTimeout(() => void this.dial(), delay);
      return;
    }
    if (this.closed) return void remote.close();
    this.remote = remote;
    this.remoteEcho = new EchoFilter(() => remote.flush());
    this.state = 'up';
    this.lastError = '';
    remote.on('error', (err: Error) => this.broker.log('warn', `link ${this.url}: remote: ${err.message}`));
    remote.on('disconnected', (info: { unconfirmed: number }) => {
      this.state = 'down';
      this.counts.disconnects++;
      // Sends written just before the connection broke may or may not have been routed: counted, never replayed.
      this.counts.unconfirmed += info.unconfirmed;
      this.broker.log('warn', `link ${this.url}: disconnected, reconnecting`);
    });
    remote.on('reconnected', () => {
      this.state = 'up';
      this.broker.log('info', `link ${this.url}: reconnected`);
    });
    for (const p of this.opts.import) remote.listen(p, (m) => this.fromRemote(m));
    this.broker.log('info', `link ${this.url}: up`);
    const queued = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    for (const q of queued) this.toRemote(q.channel, q.message, q.data, q.fp, q.size);
  }

  private fromLocal(m: ReceivedMessage): void {
    if (m.isCall) return this.decline(m);
    if (this.localEcho?.take(fingerprint(m.channel, m.message, m.bytes))) return;
    // What the remote broker will hand back is the data as send() encodes it.
    // A copy: the link may queue the data past the handler, and shared-memory data are only lent.
    const data = m.copyData();
    const fp = fingerprint(m.channel, m.message, encodedLikeSend(data));
    this.toRemote(m.channel, m.message, data, fp, m.bytes.length + m.channel.length + m.message.length);
  }

  private fromRemote(m: ReceivedMessage): void {
    if (m.isCall) return this.decline(m);
    if (this.remoteEcho?.take(fingerprint(m.channel, m.message, m.bytes))) return;
    const local = this.local;
    if (!local || local.bufferedBytes > this.opts.maxBufferedBytes) {
      this.counts.lost++;
      return;
    }
    this.localEcho!.expect(fingerprint(m.channel, m.message, encodedLikeSend(m.data)));
    local.send(m.channel, m.message, m.data);
    this.counts.imported++;
  }

  private toRemote(channel: string, message: string, data: unknown, fp: string, size: number): void {
    const remote = this.remote;
    if (!remote) {
      // Not connected yet: bounded queue, loss counted.
      if (this.queuedBytes + size > this.opts.maxBufferedBytes) {
        this.counts.lost++;
        return;
      }
      this.queue.push({ channel, message, data, fp, size });
      this.queuedBytes += size;
      return;
    }
    // Connected but slow, or disconnected with the client's backlog full: drop and count.
    if (remote.bufferedBytes + size > this.opts.maxBufferedBytes) {
      this.counts.lost++;
      return;
    }
    try {
      this.remoteEcho!.expect(fp);
      remote.send(channel, message, data);
      this.counts.exported++;
    } catch (err) {
      if ((err as QcopError).code !== 'ENOBUFS') throw err;
      this.counts.lost++;
    }
  }

  /** A link carries messages, not calls: declining lets the caller hear ENOLISTENER at once. */
  private decline(m: ReceivedMessage): void {
    this.counts.declinedCalls++;
    m.decline?.();
  }

  stats(): Record<string, unknown> {
    return {
      url: this.url, state: this.state, export: this.opts.export, import: this.opts.import,
      ...this.counts,
      echoesSuppressed: (this.localEcho?.suppressed ?? 0) + (this.remoteEcho?.suppressed ?? 0),
      bufferedBytes: this.remote ? this.remote.bufferedBytes : this.queuedBytes,
      maxBufferedBytes: this.opts.maxBufferedBytes,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    await Promise.all([this.remote?.close(), this.local?.close()]);
  }
}
