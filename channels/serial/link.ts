// A serial link: this broker's export patterns go out on the line, records from the line come in for the import patterns.
import { connect, type Broker, type Client, type ReceivedMessage } from '../../runtime/index.js';
import { decodeData, encodedLikeSend } from '../shared/cbor.js';
import { EchoFilter, fingerprint } from '../shared/echo.js';
import { compileAll, matchesAny, type Pattern } from '../shared/wildcard.js';
import { DEFAULT_MAX_RECORD, FrameReader, HELLO_ANSWER, Type, encodeHello, encodeMsg, msgRecordSize, type Record_ } from './frame.js';
import type { SerialLinkOptions } from './options.js';
import { Port } from './port.js';

/**
 * Locally an in-process client of this broker (listening on the export patterns); on the line,
 * records of docs/SERIAL.md. The line is symmetric: the peer (another broker's serial link, or a
 * microcontroller) sends what it exports, and this side keeps what matches its import patterns.
 */
export class SerialLink {
  private local: Client | null = null;
  private echo: EchoFilter | null = null;
  private readonly reader: FrameReader;
  private readonly imports: Pattern[];
  private peer: { name: string; maxRecord: number } | null = null;
  readonly counts = { sent: 0, received: 0, lost: 0, tooBig: 0, notImported: 0, badData: 0, declinedCalls: 0 };

  constructor(private readonly broker: Broker, private readonly opts: SerialLinkOptions, private readonly port: Port) {
    this.reader = new FrameReader(opts.maxRecordBytes);
    this.imports = compileAll(opts.import);
  }

  async start(): Promise<void> {
    const local = await connect({ broker: this.broker, name: `qcop-serial:${this.opts.device}`, highWaterMark: this.opts.maxBufferedBytes });
    local.on('error', (err: Error) => this.broker.log('warn', `serial ${this.opts.device}: ${err.message}`));
    // Should the broker ever drop for this link (it reads at once, so only past its memory budget): counted.
    local.on('lost', (info: { count: number }) => (this.counts.lost += info.count));
    this.local = local;
    this.echo = new EchoFilter(() => local.flush());
    for (const p of this.opts.export) local.listen(p, (m) => this.fromLocal(m));
    const port = this.port;
    port.on('data', (chunk: Buffer) => this.reader.push(chunk, (r) => this.fromLine(r)));
    port.on('open', () => {
      this.broker.log(port.reopens > 0 ? 'warn' : 'info', `serial ${this.opts.device}: open at ${this.opts.baud} baud${port.reopens > 0 ? ' again' : ''}`);
      port.write(encodeHello(HELLO_ANSWER, this.opts.maxRecordBytes, this.broker.options.name));
    });
    port.on('down', (err: Error) => this.broker.log('warn', `serial ${this.opts.device}: gone (${err.message}); reopening`));
    port.on('failed', (why: { code: string; text: string }, changed: boolean) => {
      if (changed) this.broker.log('error', `serial: ${why.code} ${why.text}; retrying every ${this.opts.retryMs} ms`);
    });
    port.open();
  }

  private fromLocal(m: ReceivedMessage): void {
    if (m.isCall) {
      this.counts.declinedCalls++;
      return m.decline?.();
    }
    if (this.echo?.take(fingerprint(m.channel, m.message, m.bytes))) return;
    const limit = Math.min(this.peer?.maxRecord ?? DEFAULT_MAX_RECORD, this.opts.maxRecordBytes);
    if (msgRecordSize(m.channel, m.message, m.bytes.length) > limit) {
      this.counts.tooBig++;
      this.counts.lost++;
      return;
    }
    const wire = encodeMsg(m.channel, m.message, m.bytes);
    // Flow control: the line drains at baud/10 bytes/s; what does not fit the bound is dropped and counted.
    if (this.port.queuedBytes + wire.length > this.opts.maxBufferedBytes) {
      this.counts.lost++;
      return;
    }
    this.port.write(wire);
    this.counts.sent++;
  }

  private fromLine(r: Record_): void {
    if (r.type === Type.Hello) {
      const again = this.peer !== null;
      this.peer = { name: r.name, maxRecord: r.maxRecord };
      this.broker.log('info', `serial ${this.opts.device}: peer '${r.name}'${again ? ' again' : ''}`);
      if (r.flags & HELLO_ANSWER) this.port.write(encodeHello(0, this.opts.maxRecordBytes, this.broker.options.name));
      return;
    }
    if (!matchesAny(this.imports, r.channel)) {
      this.counts.notImported++;
      return;
    }
    let data: unknown;
    try {
      data = decodeData(r.data);
    } catch {
      this.counts.badData++;
      return;
    }
    const local = this.local;
    if (!local || local.bufferedBytes > this.opts.maxBufferedBytes) {
      this.counts.lost++;
      return;
    }
    try {
      this.echo!.expect(fingerprint(r.channel, r.message, encodedLikeSend(data)));
      local.send(r.channel, r.message, data);
      this.counts.received++;
    } catch (err) {
      // A name the broker refuses (the peer is not a qcop client): counted, the line goes on.
      this.counts.badData++;
      this.broker.log('warn', `serial ${this.opts.device}: record refused: ${(err as Error).message}`);
    }
  }

  stats(): Record<string, unknown> {
    return {
      device: this.opts.device, baud: this.opts.baud, state: this.port.state, export: this.opts.export, import: this.opts.import,
      peer: this.peer?.name ?? null, ...this.counts, ...this.reader.counts,
      echoesSuppressed: this.echo?.suppressed ?? 0, queuedBytes: this.port.queuedBytes, maxBufferedBytes: this.opts.maxBufferedBytes,
      reopens: this.port.reopens, ...(this.port.lastError ? { lastError: this.port.lastError } : {}),
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.port.close(), this.local?.close()]);
  }
}
