// Broker options: their defaults, and validation of a config file or flags (docs/CONFIG.md).
import { QcopError } from '../protocol/errors.js';
import { OPTIONS, OPTION_BY_KEY } from './option-table.js';

/** What the broker does with a receiver whose outbound queue is full (SPEC §2). */
export type SlowConsumerPolicy = 'drop' | 'disconnect';

export interface BrokerOptions {
  /** Unix socket path; default from QCOP_SOCKET / XDG_RUNTIME_DIR / uid (SPEC §6). */
  socket?: string;
  /** Group allowed to connect: the socket folder becomes 0750 with this group (name or gid). */
  group?: string | number;
  /** Largest frame accepted, header included (default 1 MiB). */
  maxFrameBytes?: number;
  /** Bytes queued towards one receiver before `slowConsumer` applies (default 8 MiB). */
  maxQueueBytes?: number;
  /** `drop` (default): drop for that receiver and tell it later; `disconnect`: close it. */
  slowConsumer?: SlowConsumerPolicy;
  /** End-to-end backpressure (default true): senders filling a receiver past half `maxQueueBytes` are paused (SPEC §2). */
  backpressure?: boolean;
  /** A receiver over its mark that makes no progress this long is stuck: the policy applies to it (default 1000 ms). */
  stallMs?: number;
  /** Listener names one connection may register (default 4096). */
  maxListeners?: number;
  /** Watches one connection may hold (default 1024). */
  maxWatches?: number;
  /** Distinct wildcard patterns registered as listener names, broker-wide (default 4096; ELIMIT beyond). */
  maxPatterns?: number;
  /** Distinct wildcard patterns watched, broker-wide (default 256; ELIMIT beyond). */
  maxWatchPatterns?: number;
  /** Simultaneous connections (default 1024). */
  maxConnections?: number;
  /** Time a new connection has to send its hello (default 2000 ms). */
  handshakeTimeoutMs?: number;
  /** Calls one connection may have in flight (default 1024; ELIMIT beyond). */
  maxCallsInFlight?: number;
  /** Time a frame may take to arrive once started (default 10000 ms; then the connection is closed, ETIMEDOUT). */
  partialFrameTimeoutMs?: number;
  /** Bytes held for frames arriving in pieces, all connections together (default 16 MiB; ENOBUFS beyond). */
  maxPartialBytes?: number;
  /** Memory the broker holds for clients: queues, partial frames, calls (default 64 MiB; new sends and calls get ENOBUFS beyond). */
  maxMemoryBytes?: number;
  /** Log lines to stderr: `error`, `warn` (default), `info`, `debug`. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Name reported in welcome and stats. */
  name?: string;
  /** Folder of policy files (SPEC §9, docs/ACL.md); without it everything is allowed to whoever the socket lets in. */
  aclDir?: string;
  /** Do not listen on any socket (only in-process and handed-over connections). */
  noSocket?: boolean;
  /** Data above this many bytes go through the sender's shared-memory pool (default 64 KiB; PROTOCOL 8.1). */
  shmThreshold?: number;
  /** Largest shared-memory pool one client may announce, all segments together (default 128 MiB; PROTOCOL 8.2). */
  maxPoolBytes?: number;
  // ---- carriers (channels/README.md): each is loaded from channels/ only when its option is set; they validate their own values.
  /** Also listen on TCP at `HOST:PORT` (a bare port means 127.0.0.1); off by default (channels/tcp). */
  tcp?: string;
  /** Shared secret every plain-TCP client must present (else $QCOP_TCP_TOKEN); 16–256 visible ASCII characters. */
  tcpToken?: string;
  /** SPEC §9: the user (name or uid) a TCP client that presented the token acts as under `aclDir`; default nobody (only `"*"` rules). */
  tcpUser?: string | number;
  /** Accept plain TCP without a token; refused unless the `tcp` host is loopback. */
  tcpInsecureLoopback?: boolean;
  /** Make the TCP listener TLS: PEM files; `requireClientCert` turns on mutual TLS. */
  tls?: { cert: string; key: string; ca?: string; requireClientCert?: boolean; /** SPEC §9: client certificate CN → user it acts as (mutual TLS). */ users?: Record<string, string | number> };
  /** Links to other brokers (`tcp://` or `tls://`): what to export there and import here. */
  links?: LinkOptions[];
  /** Serial links (channels/serial, docs/SERIAL.md). */
  serial?: Array<Record<string, unknown>>;
  /** Serial lines on which one qcop client connects: `[{ device, baud }]` (docs/SERIAL.md §8). */
  serialClients?: Array<Record<string, unknown>>;
  /** The D-Bus bridge (channels/dbus). */
  dbus?: Record<string, unknown>;
  /** The MQTT bridge (channels/mqtt, docs/MQTT.md). */
  mqtt?: Record<string, unknown>;
  // ---- SPEC §10 (docs/DURABLE.md)
  /** Channel names or patterns whose messages are stored until acknowledged (`["QPE/Application/*"]`). */
  queued?: string[];
  /** Folder of the durable store (default /var/lib/qcop for root). */
  stateDir?: string;
  /** `sync` (default): stored means on disk before routing; `batch`: synced every `syncIntervalMs`. */
  durability?: 'sync' | 'batch';
  /** With batch durability, how often the store is synced (default 100 ms). */
  syncIntervalMs?: number;
  /** Bytes the store may hold, on disk and in memory (default 64 MiB; ENOBUFS beyond). */
  maxStoredBytes?: number;
  /** Deliveries without acknowledgement before qcop/dead-letter (default 3). */
  maxDeliveries?: number;
  /** Unacknowledged queued messages per connection (default 256). */
  maxUnackedPerClient?: number;
  /** Bytes of retained values (default 16 MiB; ENOBUFS beyond). */
  maxRetainedBytes?: number;
  /** Folder of service files (default /etc/qcop/services.d when it exists). */
  servicesDir?: string;
  /** Time a started program has to register (default 10000 ms). */
  activationTimeoutMs?: number;
  /** Programs being started at once (default 64). */
  maxActivationChannels?: number;
  /** Messages and calls waiting for started programs (default 1024). */
  maxActivationWaiting?: number;
}

/** One link to another broker (channels/tcp/link.ts). */
export interface LinkOptions {
  /** The other broker: `tcp://host:port` or `tls://host:port`. */
  url: string;
  /** Patterns whose messages sent here are re-sent there. */
  export?: string[];
  /** Patterns whose messages sent there are re-sent here. */
  import?: string[];
  /** Token the other broker requires (else $QCOP_TCP_TOKEN). */
  token?: string;
  /** TLS files for `tls://`: the CA to trust, and this broker's certificate and key for mutual TLS. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Bytes the link's client buffers while the other broker is away or slow (default 1 MiB); then the link stops reading and this broker holds the senders back (SPEC §2). */
  maxBufferedBytes?: number;
}

/** Options only carriers read (channels/README.md); `resolveOptions` passes them through untouched. */
export type CarrierOptionKey = 'tcp' | 'tcpToken' | 'tcpUser' | 'tcpInsecureLoopback' | 'tls' | 'links' | 'serial' | 'serialClients' | 'dbus' | 'mqtt' | 'queued';

export type ResolvedOptions = Required<Omit<BrokerOptions, 'socket' | 'group' | 'stateDir' | 'servicesDir' | CarrierOptionKey>> &
  Pick<BrokerOptions, CarrierOptionKey | 'stateDir' | 'servicesDir'> & { socket: string; group?: string | number };

/** Every key a config file may hold (option-table.ts). */
export const KNOWN_OPTIONS: ReadonlySet<string> = new Set(OPTIONS.map((o) => o.key));

/** Checks every option against option-table.ts and fills in defaults; throws EINVAL naming the bad key. */
export function resolveOptions(input: BrokerOptions, socket: string): ResolvedOptions {
  const bad = (key: string, why: string): never => {
    throw new QcopError('EINVAL', `option ${key}: ${why}`);
  };
  const given = input as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!KNOWN_OPTIONS.has(key) && given[key] !== undefined) bad(key, 'unknown option');
  }
  const out: Record<string, unknown> = { socket };
  for (const o of OPTIONS) {
    const v = given[o.key];
    if (o.kind === 'carrier' || o.key === 'socket') {
      if (o.kind === 'carrier') out[o.key] = v; // checked by the carrier when it loads
      continue;
    }
    if (v === undefined) {
      if (o.default !== null) out[o.key] = o.default;
      continue;
    }
    if (o.kind === 'int' && (typeof v !== 'number' || !Number.isInteger(v) || v < o.min || v > o.max)) bad(o.key, `must be an integer from ${o.min} to ${o.max}`);
    if (o.kind === 'choice' && !o.values.includes(v as string)) bad(o.key, `must be ${o.values.map((x) => `'${x}'`).join(', ').replace(/, ([^,]*)$/, ' or $1')}`);
    if (o.kind === 'bool' && typeof v !== 'boolean') bad(o.key, 'must be true or false');
    if (o.key === 'group' && typeof v !== 'string' && typeof v !== 'number') bad('group', 'must be a name or a gid');
    if (o.key === 'name' && typeof v !== 'string') bad('name', 'must be text');
    if ((o.key === 'stateDir' || o.key === 'servicesDir') && (typeof v !== 'string' || v === '')) bad(o.key, 'must be a folder path');
    out[o.key] = v;
  }
  // A frame of maxFrameBytes arriving in pieces must fit both budgets, or it could never be received.
  const frame = out.maxFrameBytes as number;
  for (const key of ['maxPartialBytes', 'maxMemoryBytes'] as const) {
    if ((out[key] as number) < frame) bad(key, `must be at least maxFrameBytes (${frame}; its default is ${OPTION_BY_KEY.get(key)!.default})`);
  }
  return out as ResolvedOptions;
}
