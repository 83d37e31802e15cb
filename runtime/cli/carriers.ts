// The optional carriers of `qcop broker` (channels/README.md): their flags, and loading them only when configured.
import type { Broker } from '../broker/broker.js';
import type { Carrier } from '../broker/facade.js';
import type { BrokerOptions } from '../broker/options.js';
import { mqttFlags } from './mqtt-flags.js';
import { UsageError, listFlag, stringFlag, type ParsedArgs } from './table.js';

// Each carrier is imported from channels/ with a computed specifier, and only when its options are
// set: a broker without them never loads that code, nor serialport or a D-Bus library.

const CARRIERS: Array<{ name: string; wanted(o: BrokerOptions): boolean; spec: string }> = [
  { name: 'tcp', wanted: (o) => o.tcp !== undefined || (o.links?.length ?? 0) > 0, spec: '../../channels/tcp/index.js' },
  { name: 'serial', wanted: (o) => (o.serial?.length ?? 0) > 0 || (o.serialClients?.length ?? 0) > 0, spec: '../../channels/serial/index.js' },
  { name: 'dbus', wanted: (o) => o.dbus !== undefined, spec: '../../channels/dbus/index.js' },
  { name: 'mqtt', wanted: (o) => o.mqtt !== undefined, spec: '../../channels/mqtt/index.js' },
];

export function carrierFlags(args: ParsedArgs, o: BrokerOptions): void {
  const str = (k: string) => stringFlag(args, k);
  const list = (k: string) => listFlag(args, k);
  if (str('tcp')) o.tcp = str('tcp');
  if (str('tcp-token')) o.tcpToken = str('tcp-token');
  if (str('tcp-user')) o.tcpUser = str('tcp-user');
  if (args.flags['tcp-insecure-loopback']) o.tcpInsecureLoopback = true;
  if (str('tls-cert') || str('tls-key')) {
    if (!str('tls-cert') || !str('tls-key')) throw new UsageError('--tls-cert and --tls-key go together');
    o.tls = { cert: str('tls-cert')!, key: str('tls-key')!, ca: str('tls-ca'), requireClientCert: args.flags['tls-require-client-cert'] === true };
  } else if (str('tls-ca') || args.flags['tls-require-client-cert']) {
    throw new UsageError('--tls-ca and --tls-require-client-cert need --tls-cert and --tls-key');
  }
  const links = list('link');
  if (links.length === 0 && (list('export').length || list('import').length)) throw new UsageError('--export and --import need a --link URL');
  for (const url of links) {
    o.links = [...(o.links ?? []), { url, export: list('export'), import: list('import'), token: str('link-token') }];
  }
  mqttFlags(args, o);
}

interface CarrierModule {
  /** Throws EINVAL/ENOENT for bad options, before the broker claims its socket. */
  check(o: BrokerOptions): void;
  /** Loads the carrier's optional npm package: ENOENT naming it and its install command when missing. */
  prepare?(): Promise<void>;
  start(b: Broker, o: BrokerOptions): Promise<Carrier>;
}

/** Imports the configured carriers and checks their options. */
export async function loadCarriers(o: BrokerOptions): Promise<Array<{ name: string; mod: CarrierModule }>> {
  const out = [];
  for (const c of CARRIERS) {
    if (!c.wanted(o)) continue;
    const mod = (await import(c.spec)) as CarrierModule;
    mod.check(o);
    await mod.prepare?.();
    out.push({ name: c.name, mod });
  }
  return out;
}

/** Starts the loaded carriers; on failure stops what started and rethrows. */
export async function startCarriers(b: Broker, o: BrokerOptions, loaded: Array<{ name: string; mod: CarrierModule }>): Promise<Carrier[]> {
  const started: Array<{ name: string; carrier: Carrier }> = [];
  try {
    for (const { name, mod } of loaded) started.push({ name, carrier: await mod.start(b, o) });
  } catch (err) {
    await Promise.all(started.map((s) => s.carrier.close()));
    throw err;
  }
  // `qcop stats` shows each carrier's figures under `carriers.<name>`.
  for (const s of started) b.addStatsSource(s.name, () => s.carrier.stats());
  return started.map((s) => s.carrier);
}
