// The MQTT bridge (SPEC §11): exported channels published to an MQTT server, imported topics sent into qcop, presence.
import { connect, type Broker, type Client, type ReceivedMessage } from '../../runtime/index.js';
import { channelProblem } from '../../runtime/internal.js';
import { encodedLikeSend } from '../shared/cbor.js';
import { EchoFilter, fingerprint } from '../shared/echo.js';
import { importOptional } from '../shared/optional-package.js';
import { compileAll, matchesAny } from '../shared/wildcard.js';
import { OfflineBuffer, type Outgoing } from './buffer.js';
import type { MqttOptions } from './options.js';
import { CONTENT_TYPE, MESSAGE_PROPERTY, decodePayload, encodePayload } from './payload.js';
import { ONLINE, channelOf, filtersOf, topicOf } from './topics.js';

// MQTT.js ships its own types, but they are heavy and pull in its whole tree: the little used here.
interface Packet {
  payload: Buffer;
  retain?: boolean;
  properties?: { userProperties?: Record<string, string | string[]>; contentType?: string };
}
interface MqttClient {
  connected: boolean;
  on(ev: string, f: (...a: any[]) => void): void;
  publish(topic: string, payload: Buffer | string, opts: Record<string, unknown>, cb?: (err?: Error) => void): void;
  subscribe(filters: string[], opts: Record<string, unknown>, cb?: (err: Error | null, granted?: Array<{ qos: number }>) => void): void;
  incomingStore: unknown;
  outgoingStore: unknown;
  reconnect(opts?: { incomingStore: unknown; outgoingStore: unknown }): void;
  end(force: boolean, opts: Record<string, unknown>, cb: () => void): void;
}
interface MqttModule {
  connect(url: string, opts: Record<string, unknown>): MqttClient;
}

/** Imports MQTT.js; ENOENT with the install command when it is not installed. */
export async function loadMqtt(): Promise<MqttModule> {
  const m = (await importOptional('mqtt', '5', 'mqtt', () => import('mqtt'))) as unknown as MqttModule & { default?: MqttModule };
  return typeof m.connect === 'function' ? m : m.default!;
}

export class MqttBridge {
  private mqtt!: MqttModule;
  private client: MqttClient | null = null;
  private local: Client | null = null;
  private echo: EchoFilter | null = null;
  private readonly exports;
  private readonly imports;
  private readonly qos1;
  private readonly retained;
  private readonly buffer: OfflineBuffer;
  /** MQTT 3.1.1 has no no-local subscriptions: what we published on an imported topic, expected back once. */
  private readonly ownPublishes = new Map<string, number>();
  private version: 5 | 4;
  /** The version the current MQTT.js client was made with (a fallback to 3.1.1 needs a new one). */
  private clientVersion: 5 | 4 = 5;
  private state: 'connecting' | 'up' | 'down' | 'closed' = 'connecting';
  private attempt = 0;
  private retry: NodeJS.Timeout | null = null;
  private lastError = '';
  private logged = 0;
  readonly counts = { published: 0, imported: 0, importsLost: 0, dropped: 0, badPayload: 0, tooLarge: 0, unbridgeable: 0, echoesSuppressed: 0, connects: 0, disconnects: 0 };

  /** The URL as logs and stats show it: a password written into it is not repeated. */
  private readonly where: string;

  constructor(private readonly broker: Broker, private readonly opts: MqttOptions) {
    this.where = opts.url.replace(/^([a-z]+:\/\/)[^@/]*@/, '$1***@');
    this.exports = compileAll(opts.export);
    this.imports = compileAll(opts.import);
    this.qos1 = compileAll(opts.qos1);
    this.retained = compileAll(opts.retain);
    this.buffer = new OfflineBuffer(opts.maxBufferedBytes);
    this.version = opts.protocol === 4 ? 4 : 5;
  }

  async start(): Promise<void> {
    this.mqtt = await loadMqtt();
    const local = await connect({ broker: this.broker, name: `qcop-mqtt:${this.opts.clientId}` });
    local.on('error', (err: Error) => this.broker.log('warn', `mqtt: ${err.message}`));
    this.local = local;
    this.echo = new EchoFilter(() => local.flush());
    // One listener per pattern; a message two patterns match is handled by the first one only.
    this.exports.forEach((p, i) => {
      local.listen(this.opts.export[i]!, (m) => {
        for (let j = 0; j < i; j++) if (this.exports[j]!.matches(m.channel)) return;
        this.fromQcop(m);
      });
    });
    this.dial();
  }

  private dial(): void {
    this.retry = null;
    if (this.state === 'closed') return;
    const o = this.opts;
    const online = o.prefix + ONLINE;
    const client = this.mqtt.connect(o.url, {
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      ca: o.tls.ca,
      cert: o.tls.cert,
      key: o.tls.key,
      protocolVersion: this.version,
      clean: o.clean,
      keepalive: o.keepalive,
      reconnectPeriod: 0, // the backoff is ours (reconnectMinMs … reconnectMaxMs)
      connectTimeout: 10_000,
      queueQoSZero: false, // the offline buffer is ours, bounded
      resubscribe: false, // up() subscribes at every connection
      ...(this.version === 5 ? { properties: { maximumPacketSize: o.maxPayloadBytes + 65536, ...(o.clean ? {} : { sessionExpiryInterval: 3600 }) } } : {}),
      ...(o.presence ? { will: { topic: online, payload: Buffer.from('false'), qos: 1, retain: true } } : {}),
    });
    this.client = client;
    this.clientVersion = this.version;
    client.on('connect', () => this.up(client));
    client.on('message', (topic: string, payload: Buffer, packet: Packet) => this.fromMqtt(topic, payload, packet));
    client.on('error', (err: Error & { code?: number }) => {
      // A 3.1.1-only server refuses a v5 CONNECT ("unacceptable protocol version", 1 or 132).
      if (this.opts.protocol === 'auto' && this.version === 5 && (err.code === 1 || err.code === 132)) {
        this.version = 4;
        this.broker.log('warn', `mqtt: ${this.where} refused MQTT 5; using MQTT 3.1.1`);
      }
      this.failed(err.message);
    });
    client.on('close', () => this.down(client));
  }

  private up(client: MqttClient): void {
    if (this.client !== client) return;
    this.state = 'up';
    this.counts.connects++;
    if (this.attempt > 0 || this.counts.connects > 1) this.broker.log('warn', `mqtt: connected to ${this.where}`);
    this.attempt = 0;
    this.lastError = '';
    const o = this.opts;
    if (o.presence) client.publish(o.prefix + ONLINE, Buffer.from('true'), { qos: 1, retain: true });
    const filters = [o.prefix, ...o.groups].flatMap((p) => filtersOf(p, o.import));
    if (filters.length > 0) {
      // QoS 1: the server delivers at the publisher's QoS, up to 1. No-local (v5): our own publishes never come back.
      client.subscribe(filters, { qos: 1, ...(this.version === 5 ? { nl: true } : {}) }, (err) => {
        if (err) this.failed(`subscribe: ${err.message}`);
      });
    }
    for (const m of this.buffer.takeAll()) this.publish(client, m);
  }

  private failed(why: string): void {
    if (why !== this.lastError && this.state !== 'closed') this.broker.log('warn', `mqtt: ${this.where}: ${why}`);
    this.lastError = why;
  }

  private down(client: MqttClient): void {
    if (this.client !== client || this.state === 'closed') return;
    if (this.state === 'up') this.counts.disconnects++;
    this.state = 'down';
    if (this.retry) return;
    const o = this.opts;
    const base = Math.min(o.reconnectMaxMs, o.reconnectMinMs * 2 ** Math.min(this.attempt++, 20));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5)); // jitter: a fleet does not come back in step
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.state === 'closed') return;
      // The stores are passed back: without them reconnect() starts empty ones, and a QoS 1 publish the
      // server had not acknowledged would be forgotten, its callback never called (test/channels/mqtt-durable.test.ts).
      if (this.version === this.clientVersion) return client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
      client.end(true, {}, () => {});
      this.dial();
    }, Math.min(delay, o.reconnectMaxMs));
  }

  /** An exported qcop message: published now, kept in the bounded buffer while the server is away, or dropped and counted. */
  private fromQcop(m: ReceivedMessage): void {
    if (m.isCall) return m.decline?.();
    if (this.echo?.take(fingerprint(m.channel, m.message, m.bytes))) return; // it came from MQTT
    const topic = topicOf(this.opts.prefix, m.channel);
    if (topic === null) {
      this.counts.unbridgeable++;
      return;
    }
    let payload: Buffer;
    try {
      payload = encodePayload(this.opts.format, m.message, this.opts.format === 'json' ? m.data : undefined, m.bytes);
    } catch (err) {
      this.counts.badPayload++;
      return this.warn(`cannot export ${m.channel}: ${(err as Error).message}`);
    }
    const retain = matchesAny(this.retained, m.channel);
    const qos: 0 | 1 = retain || this.opts.qos === 1 || matchesAny(this.qos1, m.channel) ? 1 : 0;
    const out: Outgoing = { topic, payload, qos, retain, message: m.message, size: payload.length + topic.length + m.message.length + 64 };
    const client = this.client;
    if (client && this.state === 'up' && client.connected && this.buffer.empty) return this.publish(client, out);
    if (!this.buffer.add(out)) this.counts.dropped++;
  }

  private publish(client: MqttClient, m: Outgoing): void {
    if (!this.buffer.admit(m)) {
      this.counts.dropped++;
      return;
    }
    const properties = this.version === 5 ? { userProperties: { [MESSAGE_PROPERTY]: m.message }, contentType: CONTENT_TYPE[this.opts.format] } : undefined;
    if (this.version === 4 && matchesAny(this.imports, m.topic.slice(this.opts.prefix.length))) this.expectOwn(m.topic, m.payload);
    client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain, ...(properties ? { properties } : {}) }, (err) => {
      this.buffer.release(m);
      if (err) this.counts.dropped++;
      else this.counts.published++;
    });
  }

  private expectOwn(topic: string, payload: Buffer): void {
    const fp = fingerprint(topic, '', payload);
    if (this.ownPublishes.size >= 4096 && !this.ownPublishes.has(fp)) this.ownPublishes.delete(this.ownPublishes.keys().next().value!);
    this.ownPublishes.set(fp, (this.ownPublishes.get(fp) ?? 0) + 1);
  }

  /** A message from MQTT on an imported topic: sent into qcop, never published back (no loops). */
  private fromMqtt(topic: string, payload: Buffer, packet: Packet): void {
    if (this.version === 4 && this.ownPublishes.size > 0) {
      const fp = fingerprint(topic, '', payload);
      const n = this.ownPublishes.get(fp);
      if (n !== undefined) {
        if (n <= 1) this.ownPublishes.delete(fp);
        else this.ownPublishes.set(fp, n - 1);
        this.counts.echoesSuppressed++;
        return;
      }
    }
    let channel = channelOf(this.opts.prefix, topic);
    for (let i = 0; channel === null && i < this.opts.groups.length; i++) channel = channelOf(this.opts.groups[i]!, topic);
    if (channel === null || !matchesAny(this.imports, channel)) return; // a wider subscription's other topics
    if (payload.length > this.opts.maxPayloadBytes) {
      this.counts.tooLarge++;
      return this.warn(`dropped a ${payload.length}-byte payload on ${topic}: longer than maxPayloadBytes ${this.opts.maxPayloadBytes}`);
    }
    const why = channelProblem(channel);
    if (why) {
      this.counts.unbridgeable++;
      return this.warn(`dropped a message on ${topic}: ${why}`);
    }
    try {
      const prop = packet.properties?.userProperties?.[MESSAGE_PROPERTY];
      const ct = packet.properties?.contentType;
      const format = ct === CONTENT_TYPE.cbor ? 'cbor' : ct === CONTENT_TYPE.json ? 'json' : this.opts.format;
      const { message, data } = decodePayload(format, payload, Array.isArray(prop) ? prop[0] : prop);
      if (matchesAny(this.exports, channel)) this.echo!.expect(fingerprint(channel, message, encodedLikeSend(data)));
      this.local!.send(channel, message, data);
      this.counts.imported++;
    } catch (err) {
      // ENOBUFS: the local client's buffer is full (SPEC §2): lost here, counted apart from bad payloads.
      if ((err as { code?: string }).code === 'ENOBUFS') this.counts.importsLost++;
      else this.counts.badPayload++;
      this.warn(`dropped a message on ${topic}: ${(err as Error).message}`);
    }
  }

  /** Logs the first 20 problems, then one in a thousand: a hostile publisher cannot flood the log. */
  private warn(text: string): void {
    if (this.logged++ < 20 || this.logged % 1000 === 0) this.broker.log('warn', `mqtt: ${text}`);
  }

  stats(): Record<string, unknown> {
    return {
      url: this.where, clientId: this.opts.clientId, state: this.state, protocol: this.version === 5 ? '5' : '3.1.1', format: this.opts.format,
      prefix: this.opts.prefix, ...(this.opts.groups.length ? { groups: this.opts.groups } : {}), export: this.opts.export, import: this.opts.import,
      ...this.counts, buffered: this.buffer.count, bufferedBytes: this.buffer.bytes, maxBufferedBytes: this.opts.maxBufferedBytes,
      echoesSuppressed: this.counts.echoesSuppressed + (this.echo?.suppressed ?? 0),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  async close(): Promise<void> {
    const was = this.state;
    this.state = 'closed';
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    if (client) {
      // A clean goodbye: presence false first (the Will only fires on an unclean end).
      if (was === 'up' && this.opts.presence && client.connected) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 2000);
          client.publish(this.opts.prefix + ONLINE, Buffer.from('false'), { qos: 1, retain: true }, () => (clearTimeout(t), resolve()));
        });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        client.end(false, {}, () => (clearTimeout(t), resolve()));
      });
    }
    await this.local?.close();
  }
}
