// A link joins this broker to another over TCP/TLS: export patterns go there, import patterns come here.
import { connect, type Broker, type Client, type ReceivedMessage } from '../../runtime/index.js';
import { Relay } from '../shared/relay.js';
import { parseBrokerUrl } from './address.js';
import type { LinkOptions } from './options.js';

type Checked = LinkOptions & { export: string[]; import: string[]; maxBufferedBytes: number };

/**
 * One link. Locally it is an in-process client of this broker; remotely an ordinary client of
 * the other broker, named `qcop-link:<this broker>`. The client library reconnects by itself and
 * re-registers the import listeners; before the first connection succeeds this class retries.
 * Each direction is a Relay (channels/shared/relay.ts): when one side cannot take more, the other
 * stops reading, so that broker holds the senders back (SPEC §2 backpressure, end to end).
 * Both clients announce `noecho` (PROTOCOL 2.3): a message this link sends on one side is never
 * handed back to it there, so it is not carried back, and the link never waits for its own echoes.
 */
export class Link {
  readonly url: string;
  private local: Client | null = null;
  private remote: Client | null = null;
  private readonly out: Relay;
  private readonly in: Relay;
  private retry: NodeJS.Timeout | null = null;
  private attempt = 0;
  private closed = false;
  private state: 'connecting' | 'up' | 'down' = 'connecting';
  private lastError = '';
  readonly counts = { lost: 0, unconfirmed: 0, disconnects: 0, declinedCalls: 0 };

  constructor(private readonly broker: Broker, private readonly opts: Checked) {
    this.url = parseBrokerUrl(opts.url).where;
    this.out = new Relay(() => this.local, () => this.remote, opts.maxBufferedBytes);
    this.in = new Relay(() => this.remote, () => this.local, opts.maxBufferedBytes);
  }

  async start(): Promise<void> {
    const local = await connect({ broker: this.broker, name: `qcop-link:${this.url}`, highWaterMark: this.opts.maxBufferedBytes, echo: false });
    local.on('error', (err: Error) => this.broker.log('warn', `link ${this.url}: local: ${err.message}`));
    // This broker dropped exports for the link after it was held longer than stallMs: counted.
    local.on('lost', (info: { count: number }) => (this.counts.lost += info.count));
    local.on('drain', () => this.in.resume());
    this.local = local;
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
        highWaterMark: this.opts.maxBufferedBytes, reconnectMaxDelayMs: 2000, echo: false,
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
      this.out.resume();
    });
    remote.on('lost', (info: { count: number }) => (this.counts.lost += info.count));
    remote.on('drain', () => this.out.resume());
    for (const p of this.opts.import) remote.listen(p, (m) => this.fromRemote(m));
    this.broker.log('info', `link ${this.url}: up`);
    this.out.resume();
  }

  private fromLocal(m: ReceivedMessage): void {
    if (m.isCall) return this.decline(m);
    // A copy: the link may keep the data past the handler, and shared-memory data are only lent.
    this.out.pass({ channel: m.channel, message: m.message, data: m.copyData(), size: m.bytes.length + m.channel.length + m.message.length });
  }

  private fromRemote(m: ReceivedMessage): void {
    if (m.isCall) return this.decline(m);
    this.in.pass({ channel: m.channel, message: m.message, data: m.copyData(), size: m.bytes.length + m.channel.length + m.message.length });
  }

  /** A link carries messages, not calls: declining lets the caller hear ENOLISTENER at once. */
  private decline(m: ReceivedMessage): void {
    this.counts.declinedCalls++;
    m.decline?.();
  }

  stats(): Record<string, unknown> {
    return {
      url: this.url, state: this.state, export: this.opts.export, import: this.opts.import,
      ...this.counts, exported: this.out.sent, imported: this.in.sent, lost: this.counts.lost + this.out.lost + this.in.lost,
      bufferedBytes: (this.remote?.bufferedBytes ?? 0) + this.out.bytes,
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
