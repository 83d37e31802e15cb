// The serial carrier's entry point: one link per `serial` entry of the broker options.
import { QcopError, identityOfUser, type Broker, type BrokerOptions, type Carrier, type PeerIdentity } from '../../runtime/index.js';
import { SerialLink } from './link.js';
import { serialOptions } from './options.js';
import { Port } from './port.js';
import * as fs from 'node:fs';
import { openDevice } from './dial.js';
import { SerialLine } from './stream.js';

/** Checks the options without opening any device. */
export function check(options: BrokerOptions): void {
  const devices = new Set<string>();
  for (const [i, o] of (options.serial ?? []).entries()) {
    const c = serialOptions(o, i);
    if (devices.has(c.device)) throw new QcopError('EINVAL', `serial device ${c.device} is configured twice`);
    devices.add(c.device);
  }
  for (const [i, o] of clientsOf(options).entries()) {
    const c = serialClientOptions(o, i);
    if (devices.has(c.device)) throw new QcopError('EINVAL', `serial device ${c.device} is configured twice`);
    devices.add(c.device);
  }
}

/** Loads serialport before the broker claims its socket, so a missing package fails the start at once. */
export async function prepare(): Promise<void> {
  await Port.load();
}

/** `serialClients: [{ device, baud }]`: devices on which one qcop client connects (SERIAL 8). */
function clientsOf(options: BrokerOptions): Array<Record<string, unknown>> {
  return options.serialClients ?? [];
}

export async function start(broker: Broker, options: BrokerOptions): Promise<Carrier> {
  check(options);
  const checked = (options.serial ?? []).map((o, i) => serialOptions(o, i));
  const SerialPort = await Port.load();
  const links = checked.map((c) => new SerialLink(broker, c, new Port(SerialPort, c.device, c.baud, c.retryMs)));
  for (const l of links) await l.start();
  const clients = clientsOf(options).map((o, i) => new SerialAcceptor(broker, serialClientOptions(o, i)));
  for (const a of clients) a.start();
  return {
    stats: () => ({ links: links.map((l) => l.stats()), clients: clients.map((a) => a.stats()) }),
    close: async () => {
      await Promise.all([...links.map((l) => l.close()), ...clients.map((a) => a.close())]);
    },
  };
}

/** One `serialClients` entry, checked. */
function serialClientOptions(o: Record<string, unknown>, i: number): ClientLine {
  const at = `serialClients[${i}]`;
  if (!o || typeof o !== 'object') throw new QcopError('EINVAL', `${at} must be an object`);
  for (const k of Object.keys(o)) if (!['device', 'baud', 'retryMs', 'maxHeldBytes', 'user'].includes(k)) throw new QcopError('EINVAL', `${at}: unknown option '${k}'`);
  if (typeof o.device !== 'string' || o.device === '') throw new QcopError('EINVAL', `${at}.device must be a device path`);
  const int = (key: string, def: number, min: number, max: number): number => {
    const v = o[key] ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new QcopError('EINVAL', `${at}.${key} must be an integer from ${min} to ${max}`);
    return v;
  };
  if (o.user !== undefined && typeof o.user !== 'string' && typeof o.user !== 'number') throw new QcopError('EINVAL', `${at}.user must be a user name or uid`);
  return {
    device: o.device, baud: int('baud', 115200, 50, 4_000_000), retryMs: int('retryMs', 500, 20, 60_000), maxHeldBytes: int('maxHeldBytes', 1 << 20, 4096, 1 << 30),
    user: o.user === undefined ? null : identityOfUser(o.user as string | number),
  };
}

/** One client line, checked; `user`: who its client is under the broker's policy (SPEC §9), null for nobody. */
interface ClientLine { device: string; baud: number; retryMs: number; maxHeldBytes: number; user: PeerIdentity | null }

/** Keeps a device open and hands each connection a client opens on it to the broker (SERIAL 8). */
class SerialAcceptor {
  private line: SerialLine | null = null;
  private port: Awaited<ReturnType<typeof openDevice>> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastError = '';
  private readonly counts = { accepted: 0, opens: 0, crcErrors: 0, malformed: 0, stale: 0, overflows: 0 };

  constructor(private readonly broker: Broker, private readonly c: ClientLine) {}

  start(): void {
    void this.open();
  }

  private async open(): Promise<void> {
    this.retry = null;
    if (this.stopped) return;
    let port: Awaited<ReturnType<typeof openDevice>>;
    try {
      port = await openDevice(this.c.device, this.c.baud);
    } catch (err) {
      if ((err as Error).message !== this.lastError) this.broker.log('warn', `serial clients: ${(err as Error).message}; retrying`);
      this.lastError = (err as Error).message;
      if (!this.stopped) this.retry = setTimeout(() => void this.open(), this.c.retryMs);
      return;
    }
    if (this.stopped) return void port.close(() => {});
    this.lastError = '';
    this.counts.opens++;
    const line = new SerialLine(port, (s) => {
      this.counts.accepted++;
      this.broker.accept(s, 'serial', this.c.user);
    }, this.c.maxHeldBytes, () => this.broker.log('warn', `serial clients: ${this.c.device}: the client sent more than maxHeldBytes (${this.c.maxHeldBytes}) while held back; connection closed`));
    this.port = port;
    this.line = line;
    port.on('data', (chunk: Buffer) => line.input(chunk));
    port.on('close', () => this.down(port, line));
    // A pty (or a USB adapter) can vanish without the read side saying so.
    this.watchdog = setInterval(() => {
      if (!fs.existsSync(this.c.device)) port.destroy();
    }, 500);
    this.watchdog.unref?.();
    line.reset();
  }

  private down(port: NonNullable<SerialAcceptor['port']>, line: SerialLine): void {
    if (this.port !== port) return;
    line.down(`${this.c.device} closed`);
    const r = line.reader.counts;
    this.counts.crcErrors += r.crcErrors;
    this.counts.malformed += r.malformed;
    this.counts.stale += line.stale;
    this.counts.overflows += line.overflows;
    this.port = null;
    this.line = null;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    if (!this.stopped) this.retry = setTimeout(() => void this.open(), this.c.retryMs);
  }

  stats(): Record<string, unknown> {
    const r = this.line?.reader.counts;
    return {
      device: this.c.device, state: this.port ? 'open' : 'opening', connected: this.line?.current != null, lastError: this.lastError || undefined,
      ...this.counts, crcErrors: this.counts.crcErrors + (r?.crcErrors ?? 0), malformed: this.counts.malformed + (r?.malformed ?? 0), stale: this.counts.stale + (this.line?.stale ?? 0), overflows: this.counts.overflows + (this.line?.overflows ?? 0), maxHeldBytes: this.c.maxHeldBytes,
    };
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    const port = this.port;
    const line = this.line;
    if (!port || !line) return;
    line.current?.destroy(); // sends END so the client learns at once
    await new Promise<void>((resolve) => port.drain(() => resolve()));
    this.down(port, line);
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }
}
