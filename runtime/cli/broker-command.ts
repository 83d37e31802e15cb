// `qcop broker` / `qcopd`: the broker in the foreground, options from --config and flags.
import * as fs from 'node:fs';
import { startBroker } from '../broker/broker.js';
import { OPTIONS, defaultText } from '../broker/option-table.js';
import { KNOWN_OPTIONS, type BrokerOptions } from '../broker/options.js';
import { sdNotify } from '../broker/notify.js';
import { defaultSocketPath } from '../broker/socket-path.js';
import { QcopError } from '../protocol/errors.js';
import { carrierFlags, loadCarriers, startCarriers } from './carriers.js';
import { MQTT_FLAGS } from './mqtt-flags.js';
import { UsageError, numberFlag, stringFlag, untilSignal, type Command, type FlagSpec, type ParsedArgs } from './table.js';

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

/** The flags of the options of option-table.ts that have one. */
function optionFlags(): Record<string, FlagSpec> {
  const flags: Record<string, FlagSpec> = {};
  for (const o of OPTIONS) {
    if (!o.flag) continue;
    const dflt = o.key === 'socket' || o.key === 'group' || o.kind === 'bool' ? '' : ` (default ${defaultText(o)})`;
    flags[o.flag] = { type: o.kind === 'bool' ? 'boolean' : 'string', description: `${o.help}${dflt}` };
  }
  return flags;
}

function optionsFrom(args: ParsedArgs): BrokerOptions {
  const o: BrokerOptions = typeof args.flags.config === 'string' ? readConfig(args.flags.config) : {};
  const set = o as Record<string, unknown>;
  for (const spec of OPTIONS) {
    if (!spec.flag) continue;
    if (spec.kind === 'bool') {
      if (args.flags[spec.flag] === true) set[spec.key] = !spec.default;
    } else if (spec.kind === 'int') {
      const n = numberFlag(args, spec.flag, { integer: true, min: 1 });
      if (n !== undefined) set[spec.key] = n;
    } else {
      const v = stringFlag(args, spec.flag);
      if (v === undefined || v === '') continue;
      if (spec.kind === 'choice' && !spec.values.includes(v)) throw new UsageError(`--${spec.flag} must be ${spec.values.map((x) => `'${x}'`).join(', ').replace(/, ([^,]*)$/, ' or $1')}`);
      set[spec.key] = v;
    }
  }
  carrierFlags(args, o);
  return o;
}

/**
 * `qcop broker --reload`: asks the broker on the socket for its pid (stats) and sends it SIGHUP,
 * which only its own user or root may. Exit 0 once sent; the broker logs whether the files loaded.
 */
async function reloadRunning(args: ParsedArgs): Promise<number> {
  const { connect } = await import('../client/connect.js');
  const socket = stringFlag(args, 'socket') ?? defaultSocketPath();
  const client = await connect({ socket, name: 'qcop-reload' });
  try {
    const pid = Number((await client.stats()).pid);
    if (!Number.isInteger(pid) || pid <= 0) throw new QcopError('EPROTO', `the broker on ${socket} did not say its pid`);
    try {
      process.kill(pid, 'SIGHUP');
    } catch (e) {
      throw QcopError.fromSystem(e, `signal the broker (pid ${pid}) on ${socket}`);
    }
    process.stderr.write(`qcop broker: asked the broker (pid ${pid}) on ${socket} to reload its policy\n`);
    return 0;
  } finally {
    await client.close();
  }
}

export const broker: Command = {
  name: 'broker',
  summary: 'Run the broker in the foreground (the same as qcopd). Flags override the --config file.',
  usage: 'qcop broker [--socket PATH] [--config FILE] [options]',
  flags: {
    ...optionFlags(),
    config: { type: 'string', description: 'JSON file of broker options (docs/CONFIG.md)' },
    reload: { type: 'boolean', description: 'tell the broker on --socket to re-read its --acl-dir policy (SIGHUP), then exit' },
    // carriers (channels/README.md)
    tcp: { type: 'string', description: 'also listen on TCP at HOST:PORT (a bare port means 127.0.0.1); off by default' },
    'tcp-token': { type: 'string', description: 'token plain-TCP clients must present (else $QCOP_TCP_TOKEN); 16-256 visible characters' },
    'tcp-user': { type: 'string', description: 'with --acl-dir: the user a TCP client with the token acts as (default: nobody)' },
    'tcp-insecure-loopback': { type: 'boolean', description: 'accept plain TCP without a token (loopback host only)' },
    'tls-cert': { type: 'string', description: 'make the TCP listener TLS: certificate PEM file' },
    'tls-key': { type: 'string', description: 'TLS private key PEM file' },
    'tls-ca': { type: 'string', description: 'CA PEM file that signs client certificates' },
    'tls-require-client-cert': { type: 'boolean', description: 'mutual TLS: refuse clients without a certificate signed by --tls-ca' },
    link: { type: 'string', multiple: true, description: 'link to another broker (tcp://host:port or tls://host:port); repeatable' },
    export: { type: 'string', multiple: true, description: 'pattern whose messages the links carry to the other broker; repeatable' },
    import: { type: 'string', multiple: true, description: 'pattern whose messages the links bring from the other broker; repeatable' },
    'link-token': { type: 'string', description: 'token the linked broker requires (else $QCOP_TCP_TOKEN)' },
    ...MQTT_FLAGS,
    help: { type: 'boolean', description: 'show this help' },
  },
  positionals: { min: 0, max: 0 },
  async run(args) {
    if (args.flags.reload === true) return reloadRunning(args);
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
      // SPEC §9: SIGHUP re-reads the policy (systemd's ExecReload, `qcop broker --reload`).
      const reload = () => void b.reload();
      process.on('SIGHUP', reload);
      await signal.promise;
      process.off('SIGHUP', reload);
      sdNotify('STOPPING=1');
      await Promise.all(carriers.map((c) => c.close()));
      await b.close();
      return 0;
    } finally {
      signal.dispose();
    }
  },
};
