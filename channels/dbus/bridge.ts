// The D-Bus bridge: qcop messages out as signals, `Send` and matched signals in, registrations shown as bus names.
import { connect, type Broker, type Client, type ReceivedMessage, type WatchEvent } from '../../runtime/index.js';
import { decodeData, encodedLikeSend } from '../shared/cbor.js';
import { EchoFilter, fingerprint } from '../shared/echo.js';
import { importOptional } from '../shared/optional-package.js';
import { compileAll, matchesAny } from '../shared/wildcard.js';
import type { DbusOptions } from './options.js';
import { BRIDGE_PATH, INTERFACE, channelToBusName, channelToPath } from './names.js';
import { ruleMatches } from './rules.js';

// dbus-next has no types and has been dormant since 2022 (docs/DECISIONS-dbus.md): the little we use, typed here.
interface DMessage {
  type: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  sender?: string;
  signature?: string;
  body: unknown[];
}
interface DBus {
  name: string | null;
  on(ev: string, f: (...a: any[]) => void): void;
  once(ev: string, f: (...a: any[]) => void): void;
  send(m: unknown): void;
  call(m: unknown): Promise<DMessage>;
  requestName(name: string, flags: number): Promise<number>;
  releaseName(name: string): Promise<number>;
  addMethodHandler(f: (m: DMessage) => boolean): void;
  disconnect(): void;
  _connection?: { on(ev: string, f: () => void): void; stream?: { on(ev: string, f: () => void): void } };
}
interface DbusModule {
  sessionBus(o: { busAddress: string }): DBus;
  Message: { new (o: Record<string, unknown>): unknown; newSignal(p: string, i: string, n: string, s: string, b: unknown[]): unknown; newMethodReturn(m: DMessage, s: string, b: unknown[]): unknown; newError(m: DMessage, n: string, t: string): unknown };
  MessageType: { SIGNAL: number; METHOD_CALL: number };
  NameFlag: { DO_NOT_QUEUE: number };
  RequestNameReply: { PRIMARY_OWNER: number };
  Variant: new (...a: any[]) => { signature: string; value: unknown };
}

/** Imports dbus-next; ENOENT with the install command when it is not installed. */
export async function loadDbus(): Promise<DbusModule> {
  return (await importOptional('dbus-next', '0.10', 'dbus', () => import('dbus-next'))).default as unknown as DbusModule;
}

/** Turns what dbus-next decoded into plain data qcop can carry (Variants unwrapped). */
function plain(v: unknown, Variant: DbusModule['Variant']): unknown {
  if (v instanceof Variant) return plain(v.value, Variant);
  if (Array.isArray(v)) return v.map((x) => plain(x, Variant));
  if (v && typeof v === 'object' && !Buffer.isBuffer(v) && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x, Variant)]));
  }
  return v;
}

export class DbusBridge {
  private dbus!: DbusModule;
  private bus: DBus | null = null;
  private local: Client | null = null;
  private echo: EchoFilter | null = null;
  private state: 'connecting' | 'up' | 'down' = 'connecting';
  private lastError = '';
  private retry: NodeJS.Timeout | null = null;
  private attempt = 0;
  private closed = false;
  private readonly present = new Set<string>();
  /** Where `Send` may send (option `send`); channels already refused and logged, a bounded set. */
  private readonly sendable: ReturnType<typeof compileAll>;
  private readonly refusedLogged = new Set<string>();
  readonly counts = { signalsOut: 0, sendsIn: 0, sendsRefused: 0, signalsIn: 0, lost: 0, badData: 0, reconnects: 0, namesOwned: 0, namesSkipped: 0 };

  constructor(private readonly broker: Broker, private readonly opts: DbusOptions) {
    this.sendable = compileAll(opts.send);
  }

  async start(): Promise<void> {
    this.dbus = await loadDbus();
    const local = await connect({ broker: this.broker, name: `qcop-dbus:${this.opts.name}` });
    local.on('error', (err: Error) => this.broker.log('warn', `dbus: ${err.message}`));
    this.local = local;
    this.echo = new EchoFilter(() => local.flush());
    for (const p of this.opts.export) local.listen(p, (m) => this.toBus(m));
    for (const p of this.opts.presence) local.watch(p, (ev) => this.presence(ev));
    await this.connectBus();
  }

  private async connectBus(): Promise<void> {
    this.retry = null;
    if (this.closed) return;
    const { sessionBus, NameFlag, RequestNameReply } = this.dbus;
    let bus: DBus | null = null;
    try {
      bus = sessionBus({ busAddress: this.opts.address });
      const b = bus;
      await new Promise<void>((resolve, reject) => {
        b.once('connect', () => resolve());
        b.once('error', (err: Error) => reject(err));
      });
      b.on('error', (err: Error) => this.lost(b, err));
      b._connection?.on('end', () => this.lost(b, new Error('the bus closed the connection')));
      const reply = await b.requestName(this.opts.name, NameFlag.DO_NOT_QUEUE);
      if (reply !== RequestNameReply.PRIMARY_OWNER) throw new Error(`the bus name ${this.opts.name} is owned by another process`);
      for (const imp of this.opts.import) await b.call(this.busCall('AddMatch', 's', [imp.rule.text]));
      b.addMethodHandler((m) => this.onMethod(b, m));
      b.on('message', (m: DMessage) => this.onSignal(b, m));
    } catch (err) {
      const why = (err as Error).message ?? String(err);
      try {
        bus?.disconnect();
      } catch {
        // already gone
      }
      if (why !== this.lastError) this.broker.log('error', `dbus: cannot use the bus at ${this.opts.address}: ${why}; retrying`);
      this.lastError = why;
      this.state = 'down';
      const delay = Math.min(this.opts.retryMaxMs, 100 * 2 ** Math.min(this.attempt++, 5));
      this.retry = setTimeout(() => void this.connectBus(), delay);
      return;
    }
    if (this.closed) return void bus.disconnect();
    if (this.state === 'down') {
      this.counts.reconnects++;
      this.broker.log('warn', `dbus: connected again to ${this.opts.address}`);
    }
    this.bus = bus;
    this.state = 'up';
    this.lastError = '';
    this.attempt = 0;
    for (const name of this.present) void this.own(name, true);
  }

  private busCall(member: string, signature: string, body: unknown[]): unknown {
    return new this.dbus.Message({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member, signature, body });
  }

  /** The daemon went away (or the connection broke): report it, forget the bus, retry. */
  private lost(b: DBus, err: Error): void {
    if (this.bus !== b) return;
    this.bus = null;
    this.state = 'down';
    this.lastError = err.message;
    this.broker.log('warn', `dbus: lost the bus at ${this.opts.address} (${err.message}); retrying`);
    try {
      b.disconnect();
    } catch {
      // already gone
    }
    if (!this.closed) this.retry = setTimeout(() => void this.connectBus(), 100);
  }

  /** (a) A qcop message on an exported channel becomes signal Message(s message, ay data). */
  private toBus(m: ReceivedMessage): void {
    if (m.isCall) return m.decline?.();
    if (this.echo?.take(fingerprint(m.channel, m.message, m.bytes))) return;
    const bus = this.bus;
    if (!bus) {
      this.counts.lost++;
      return;
    }
    bus.send(this.dbus.Message.newSignal(channelToPath(m.channel), INTERFACE, 'Message', 'say', [m.message, Buffer.from(m.bytes)]));
    this.counts.signalsOut++;
  }

  /** (a) Method Send(s channel, s message, ay data) on /org/qcop sends into qcop. */
  private onMethod(b: DBus, m: DMessage): boolean {
    if (m.path !== BRIDGE_PATH || m.interface !== INTERFACE || m.member !== 'Send') return false;
    const { Message } = this.dbus;
    if (m.signature !== 'ssay') {
      b.send(Message.newError(m, 'org.freedesktop.DBus.Error.InvalidArgs', `Send takes (s channel, s message, ay data), not (${m.signature ?? ''})`));
      return true;
    }
    const [channel, message, bytes] = m.body as [string, string, Buffer];
    // SPEC §8: any peer on the bus may call Send, so it reaches only the channels the config lists.
    if (!matchesAny(this.sendable, channel)) {
      this.counts.sendsRefused++;
      if (this.refusedLogged.size < 64 && !this.refusedLogged.has(channel)) {
        this.refusedLogged.add(channel);
        this.broker.log('warn', `dbus: refused Send from ${m.sender ?? 'a bus peer'} into ${channel}: EACCES not in dbus.send`);
      }
      b.send(Message.newError(m, 'org.qcop.Error.EACCES', `the bridge does not send into ${channel}: it is not in the bridge's dbus.send list`));
      return true;
    }
    try {
      const data = decodeData(bytes);
      this.echo!.expect(fingerprint(channel, message, encodedLikeSend(data)));
      this.local!.send(channel, message, data);
      this.counts.sendsIn++;
      b.send(Message.newMethodReturn(m, '', []));
    } catch (err) {
      this.counts.badData++;
      const code = (err as { code?: string }).code ?? 'EINVAL';
      b.send(Message.newError(m, `org.qcop.Error.${code}`, (err as Error).message));
    }
    return true;
  }

  /** (b) Signals matching an import rule become qcop messages; our own signals never come back. */
  private onSignal(b: DBus, m: DMessage): void {
    if (m.type !== this.dbus.MessageType.SIGNAL || m.sender === b.name) return;
    for (const imp of this.opts.import) {
      if (!ruleMatches(imp.rule, m)) continue;
      const message = imp.message ?? `${m.member}(${m.signature ?? ''})`;
      try {
        this.local!.send(imp.channel, message, plain(m.body, this.dbus.Variant));
        this.counts.signalsIn++;
      } catch (err) {
        this.counts.badData++;
        this.broker.log('warn', `dbus: signal ${m.interface}.${m.member} not imported: ${(err as Error).message}`);
      }
    }
  }

  /** Registration of a qcop listener name shows as an owned bus name (concrete names only). */
  private presence(ev: WatchEvent): void {
    if (ev.channel.includes('*')) return;
    if (ev.type === 'registered') this.present.add(ev.channel);
    else this.present.delete(ev.channel);
    void this.own(ev.channel, ev.type === 'registered');
  }

  private async own(channel: string, on: boolean): Promise<void> {
    const name = channelToBusName(channel);
    const bus = this.bus;
    if (!name) {
      if (on) this.counts.namesSkipped++;
      return;
    }
    if (!bus) return;
    try {
      if (on) {
        await bus.requestName(name, this.dbus.NameFlag.DO_NOT_QUEUE);
        this.counts.namesOwned++;
      } else {
        await bus.releaseName(name);
        this.counts.namesOwned--;
      }
    } catch (err) {
      this.broker.log('warn', `dbus: cannot ${on ? 'own' : 'release'} ${name}: ${(err as Error).message}`);
    }
  }

  stats(): Record<string, unknown> {
    return {
      address: this.opts.address, name: this.opts.name, state: this.state, uniqueName: this.bus?.name ?? null,
      export: this.opts.export, import: this.opts.import.map((i) => ({ rule: i.rule.text, channel: i.channel })), send: this.opts.send, presence: [...this.present],
      ...this.counts, echoesSuppressed: this.echo?.suppressed ?? 0, ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const bus = this.bus;
    this.bus = null;
    try {
      bus?.disconnect();
    } catch {
      // gone
    }
    await this.local?.close();
  }
}
