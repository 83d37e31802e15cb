// `qcop broker` / `qcopd`: the broker in the foreground, options from --config and flags.
import * as fs from 'node:fs';
import { startBroker } from '../broker/broker.js';
import { KNOWN_OPTIONS, type BrokerOptions } from '../broker/options.js';
import { sdNotify } from '../broker/notify.js';
import { defaultSocketPath } from '../broker/socket-path.js';
import { QcopError } from '../protocol/errors.js';
import { carrierFlags, loadCarriers, startCarriers } from './carriers.js';
import { UsageError, numberFlag, stringFlag, untilSignal, type Command, type ParsedArgs } from './table.js';

/** Reads `--config FILE`: a JSON object whose keys are broker options (docs/CONFIG.md). */
export function readConfig(file: string): BrokerOptions {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new QcopError('ENOENT', `cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`config ${file} is not JSON: ${(err as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new UsageError(`config ${file} must hold a JSON object`);
  for (const key of Object.keys(json)) {
    if (!KNOWN_OPTIONS.has(key)) throw new UsageError(`config ${file}: unknown option '${key}' (see docs/CONFIG.md)`);
  }
  return json as BrokerOptions;
}

function optionsFrom(args: ParsedArgs): BrokerOptions {
  const o: BrokerOptions = typeof args.flags.config === 'string' ? readConfig(args.flags.config) : {};
  const str = (k: string) => stringFlag(args, k);
  if (str('socket')) o.socket = str('socket');
  if (str('group')) o.group = str('group');
  if (str('name')) o.name = str('name');
  const policy = str('slow-consumer');
  if (policy !== undefined) {
    if (policy !== 'drop' && policy !== 'disconnect') throw new UsageError("--slow-consumer must be 'drop' or 'disconnect'");
    o.slowConsumer = policy;
  }
  if (args.flags['no-backpressure'] === true) o.backpressure = false;
  const level = str('log-level');
  if (level !== undefined) o.logLevel = level as BrokerOptions['logLevel'];
  const nums: Array<[string, keyof BrokerOptions]> = [
    ['max-frame-bytes', 'maxFrameBytes'], ['max-queue-bytes', 'maxQueueBytes'], ['max-listeners', 'maxListeners'],
    ['max-watches', 'maxWatches'], ['max-patterns', 'maxPatterns'],
    ['max-watch-patterns', 'maxWatchPatterns'], ['max-connections', 'maxConnections'],
    ['max-calls-in-flight', 'maxCallsInFlight'], ['stall-ms', 'stallMs'], ['max-partial-bytes', 'maxPartialBytes'], ['max-memory-bytes', 'maxMemoryBytes'],
  ];
  for (const [flag, key] of nums) {
    const n = numberFlag(args, flag, { integer: true, min: 1 });
    if (n !== undefined) (o as Record<string, unknown>)[key] = n;
  }
  carrierFlags(args, o);
  return o;
}

export const broker: Command = {
  name: 'broker',
  summary: 'Run the broker in the foreground (the same as qcopd). Flags override the --config file.',
  usage: 'qcop broker [--socket PATH] [--config FILE] [options]',
  flags: {
    socket: { type: 'string', description: 'socket path (default: $QCOP_SOCKET, $XDG_RUNTIME_DIR/qcop/qcop.sock, /run/qcop/qcop.sock for root, /tmp/qcop-UID/qcop.sock)' },
    config: { type: 'string', description: 'JSON file of broker options (docs/CONFIG.md)' },
    group: { type: 'string', description: 'group allowed to connect: socket folder 0750 and socket 0660, both given to that group' },
    'max-frame-bytes': { type: 'string', description: 'largest frame accepted (default 1048576)' },
    'max-queue-bytes': { type: 'string', description: 'bytes queued per receiver before the slow-consumer policy (default 8388608)' },
    'slow-consumer': { type: 'string', description: "'drop' (default) or 'disconnect'" },
    'no-backpressure': { type: 'boolean', description: 'apply the slow-consumer policy at the queue limit at once instead of pausing senders' },
    'stall-ms': { type: 'string', description: 'a receiver making no progress this long over its mark is stuck (default 1000)' },
    'max-listeners': { type: 'string', description: 'listener names per connection (default 4096)' },
    'max-watches': { type: 'string', description: 'watches per connection (default 1024)' },
    'max-patterns': { type: 'string', description: 'distinct listener patterns on the broker (default 4096)' },
    'max-watch-patterns': { type: 'string', description: 'distinct watched patterns on the broker (default 256)' },
    'max-connections': { type: 'string', description: 'simultaneous connections (default 1024)' },
    'max-calls-in-flight': { type: 'string', description: 'calls one connection may have waiting (default 1024)' },
    'max-partial-bytes': { type: 'string', description: 'bytes held for frames arriving in pieces, all connections (default 16777216)' },
    'max-memory-bytes': { type: 'string', description: 'memory budget for queues, partial frames and calls; ENOBUFS past it (default 67108864)' },
    'log-level': { type: 'string', description: 'error, warn (default), info or debug' },
    name: { type: 'string', description: 'broker name shown in stats' },
    // carriers (channels/README.md)
    tcp: { type: 'string', description: 'also listen on TCP at HOST:PORT (a bare port means 127.0.0.1); off by default' },
    'tcp-token': { type: 'string', description: 'token plain-TCP clients must present (else $QCOP_TCP_TOKEN); 16-256 visible characters' },
    'tcp-insecure-loopback': { type: 'boolean', description: 'accept plain TCP without a token (loopback host only)' },
    'tls-cert': { type: 'string', description: 'make the TCP listener TLS: certificate PEM file' },
    'tls-key': { type: 'string', description: 'TLS private key PEM file' },
    'tls-ca': { type: 'string', description: 'CA PEM file that signs client certificates' },
    'tls-require-client-cert': { type: 'boolean', description: 'mutual TLS: refuse clients without a certificate signed by --tls-ca' },
    link: { type: 'string', multiple: true, description: 'link to another broker (tcp://host:port or tls://host:port); repeatable' },
    export: { type: 'string', multiple: true, description: 'pattern whose messages the links carry to the other broker; repeatable' },
    import: { type: 'string', multiple: true, description: 'pattern whose messages the links bring from the other broker; repeatable' },
    'link-token': { type: 'string', description: 'token the linked broker requires (else $QCOP_TCP_TOKEN)' },
    help: { type: 'boolean', description: 'show this help' },
  },
  positionals: { min: 0, max: 0 },
  async run(args) {
    const options = optionsFrom(args);
    const signal = untilSignal();
    try {
      const loaded = await loadCarriers(options); // before the socket: bad options or a missing package stop here
      const b = await startBroker(options);
      process.stderr.write(`qcopd: listening on ${b.socketPath ?? defaultSocketPath()}\n`);
      const carriers = await startCarriers(b, options, loaded).catch(async (err) => {
        await b.close();
        throw err;
      });
      sdNotify(`READY=1\nMAINPID=${process.pid}\nSTATUS=routing on ${b.socketPath}`);
      await signal.promise;
      sdNotify('STOPPING=1');
      await Promise.all(carriers.map((c) => c.close()));
      await b.close();
      return 0;
    } finally {
      signal.dispose();
    }
  },
};
