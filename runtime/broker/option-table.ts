// The broker's options in one table: key, flag, bounds, default, one line of help. The config check
// (options.ts), the flags of `qcop broker` (cli/broker-command.ts) and the test that docs/CONFIG.md
// agrees (test/unit/broker/option-table.test.ts) all read it.
import { DEFAULT_LIMITS, DEFAULT_MAX_POOL_BYTES, DEFAULT_SHM_THRESHOLD } from '../protocol/constants.js';

interface Common {
  key: string;
  /** The `qcop broker` flag, without `--`; null when the option is set in the config file only. */
  flag: string | null;
  help: string;
}
export interface IntOption extends Common { kind: 'int'; min: number; max: number; default: number }
export interface ChoiceOption extends Common { kind: 'choice'; values: readonly string[]; default: string }
/** A boolean; `flag` turns it to the opposite of its default (`--no-backpressure`). */
export interface BoolOption extends Common { kind: 'bool'; default: boolean }
/** Text (or, for `group`, a name or a gid); a null default means "none", or computed (`socket`). */
export interface TextOption extends Common { kind: 'text'; default: string | null }
/** Read by a carrier when it loads (channels/README.md), which checks it; its flags are in cli/carriers.ts. */
export interface CarrierOption extends Common { kind: 'carrier'; default: null }
export type OptionSpec = IntOption | ChoiceOption | BoolOption | TextOption | CarrierOption;

const int = (key: string, flag: string | null, min: number, max: number, dflt: number, help: string): IntOption => ({ key, flag, kind: 'int', min, max, default: dflt, help });
const carrier = (key: string, help: string): CarrierOption => ({ key, flag: null, kind: 'carrier', default: null, help });

export const OPTIONS: readonly OptionSpec[] = [
  { key: 'socket', flag: 'socket', kind: 'text', default: null, help: 'socket path (default: $QCOP_SOCKET, $XDG_RUNTIME_DIR/qcop/qcop.sock, /run/qcop/qcop.sock for root, /tmp/qcop-UID/qcop.sock)' },
  { key: 'group', flag: 'group', kind: 'text', default: null, help: 'group allowed to connect: socket folder 0750 and socket 0660, both given to that group' },
  int('maxFrameBytes', 'max-frame-bytes', 1024, 1 << 30, DEFAULT_LIMITS.maxFrameBytes, 'largest frame accepted'),
  int('maxQueueBytes', 'max-queue-bytes', 4096, 1 << 30, DEFAULT_LIMITS.maxQueueBytes, 'bytes queued per receiver before the slow-consumer policy'),
  { key: 'slowConsumer', flag: 'slow-consumer', kind: 'choice', values: ['drop', 'disconnect'], default: 'drop', help: "what happens to a stuck receiver: 'drop' or 'disconnect'" },
  { key: 'backpressure', flag: 'no-backpressure', kind: 'bool', default: true, help: 'apply the slow-consumer policy at the queue limit at once instead of pausing senders' },
  int('stallMs', 'stall-ms', 10, 3_600_000, 1000, 'a receiver making no progress this long over its mark is stuck'),
  int('maxListeners', 'max-listeners', 1, 1 << 20, DEFAULT_LIMITS.maxListeners, 'listener names per connection'),
  int('maxWatches', 'max-watches', 1, 1 << 20, DEFAULT_LIMITS.maxWatches, 'watches per connection'),
  int('maxPatterns', 'max-patterns', 1, 1 << 20, 4096, 'distinct listener patterns on the broker'),
  int('maxWatchPatterns', 'max-watch-patterns', 1, 1 << 20, 256, 'distinct watched patterns on the broker'),
  int('maxConnections', 'max-connections', 1, 1 << 20, 1024, 'simultaneous connections'),
  int('handshakeTimeoutMs', null, 10, 600_000, 2000, 'time a new connection has to send its hello'),
  int('maxCallsInFlight', 'max-calls-in-flight', 1, 1 << 20, 1024, 'calls one connection may have waiting'),
  int('partialFrameTimeoutMs', null, 10, 3_600_000, 10_000, 'time a frame may take to arrive once started'),
  int('maxPartialBytes', 'max-partial-bytes', 1 << 16, 2 ** 48, 16 << 20, 'bytes held for frames arriving in pieces, all connections'),
  int('maxMemoryBytes', 'max-memory-bytes', 1 << 20, 2 ** 48, 64 << 20, 'memory budget for queues, partial frames and calls; ENOBUFS past it'),
  { key: 'logLevel', flag: 'log-level', kind: 'choice', values: ['error', 'warn', 'info', 'debug'], default: 'warn', help: 'log lines to stderr: error, warn, info or debug' },
  { key: 'name', flag: 'name', kind: 'text', default: 'qcopd', help: 'broker name shown in welcome and stats' },
  { key: 'aclDir', flag: 'acl-dir', kind: 'text', default: null, help: 'folder of policy files (docs/ACL.md): who may send, listen, watch, monitor which channels; without it, everyone the socket lets in may do everything' },
  { key: 'noSocket', flag: null, kind: 'bool', default: false, help: 'library only: no Unix socket, only in-process clients' },
  int('shmThreshold', null, 0, 1 << 30, DEFAULT_SHM_THRESHOLD, 'data above this many bytes go through the sender\'s shared-memory pool'),
  int('maxPoolBytes', null, 1 << 16, 2 ** 32 - 1, DEFAULT_MAX_POOL_BYTES, 'largest shared-memory pool one client may announce'),
  carrier('tcp', 'also listen on TCP'),
  carrier('tcpToken', 'token plain-TCP clients must present'),
  carrier('tcpUser', 'the user a TCP client with the token acts as (SPEC §9)'),
  carrier('tcpInsecureLoopback', 'plain TCP without a token, loopback only'),
  carrier('tls', 'TLS for the TCP listener'),
  carrier('links', 'links to other brokers'),
  carrier('serial', 'serial links'),
  carrier('serialClients', 'serial lines with one client each'),
  carrier('dbus', 'the D-Bus bridge'),
  carrier('mqtt', 'the MQTT bridge (docs/MQTT.md)'),
  // SPEC §10 (docs/DURABLE.md): queued channels, retained values, activation.
  { key: 'queued', flag: null, kind: 'carrier', default: null, help: 'channel names or patterns whose messages are stored until acknowledged (checked by runtime/broker/durable)' },
  { key: 'stateDir', flag: 'state-dir', kind: 'text', default: null, help: 'folder of the durable store (default /var/lib/qcop for root, else $XDG_STATE_HOME/qcop or ~/.local/state/qcop)' },
  { key: 'durability', flag: 'durability', kind: 'choice', values: ['sync', 'batch'], default: 'sync', help: "'sync': a stored message is on disk before it is routed; 'batch': written at once, synced every syncIntervalMs" },
  int('syncIntervalMs', null, 1, 60_000, 100, 'with batch durability, how often the store is synced to disk'),
  int('maxStoredBytes', 'max-stored-bytes', 1024, 2 ** 48, 64 << 20, 'bytes of stored messages and retained values (on disk, and held in memory too); ENOBUFS beyond'),
  int('maxDeliveries', 'max-deliveries', 1, 255, 3, 'deliveries of a queued message without acknowledgement before it goes to qcop/dead-letter'),
  int('maxUnackedPerClient', null, 1, 1 << 20, 256, 'messages of queued channels one connection may hold unacknowledged; more wait'),
  int('maxRetainedBytes', 'max-retained-bytes', 0, 2 ** 40, 16 << 20, 'bytes of retained values (names and data); ENOBUFS beyond'),
  { key: 'servicesDir', flag: 'services-dir', kind: 'text', default: null, help: 'folder of service files: programs the broker starts for channels nobody listens to (default /etc/qcop/services.d when it exists)' },
  int('activationTimeoutMs', null, 100, 3_600_000, 10_000, 'time a started program has to register before EACTIVATION'),
  int('maxActivationChannels', null, 1, 4096, 64, 'programs being started at once'),
  int('maxActivationWaiting', null, 1, 1 << 20, 1024, 'messages and calls waiting for started programs, all together; ELIMIT beyond'),
];

export const OPTION_BY_KEY: ReadonlyMap<string, OptionSpec> = new Map(OPTIONS.map((o) => [o.key, o]));

/** The default as docs/CONFIG.md and `--help` write it. */
export function defaultText(o: OptionSpec): string {
  if (o.default === null) return 'none';
  return String(o.default);
}
