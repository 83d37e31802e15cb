// Checks the MQTT bridge's options (`mqtt: {...}` in the broker config, or the --mqtt* flags) once, at start.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { QcopError } from '../../runtime/index.js';
import { patternProblem } from '../../runtime/internal.js';

export type PayloadFormat = 'cbor' | 'json';

export interface MqttOptions {
  /** mqtt://, mqtts://, ws:// or wss:// URL of the MQTT server. */
  url: string;
  /** MQTT client id; default `qcop-<hostname>[-<prefix>]`, stable across restarts. */
  clientId: string;
  username?: string;
  password?: string;
  /** PEM contents (read at start): the CA to trust, and this board's certificate and key. */
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Topic prefix; channel `a/b` is topic `<prefix>a/b`. */
  prefix: string;
  /** Group prefixes (`fleet/all/`): their topics are imported too, so one publish reaches every board of the group. */
  groups: string[];
  export: string[];
  import: string[];
  format: PayloadFormat;
  /** QoS of every exported message (0 or 1). */
  qos: 0 | 1;
  /** Channel patterns published with QoS 1 whatever `qos` says (the queued channels, SPEC §11). */
  qos1: string[];
  /** Channel patterns published retained (and with QoS 1): the broker keeps the last value for late subscribers. */
  retain: string[];
  /** 5, 4 (3.1.1) or 'auto' (5, falling back to 3.1.1 when the server refuses it). */
  protocol: 5 | 4 | 'auto';
  /** Bytes of exported messages kept while the server is unreachable or has not acknowledged them. */
  maxBufferedBytes: number;
  /** Largest MQTT payload taken in; longer ones are dropped and counted. */
  maxPayloadBytes: number;
  /** Reconnection backoff: first and longest pause, ms. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** MQTT keep-alive, seconds. */
  keepalive: number;
  /** Publish `<prefix>$online` (true, and false as the Last Will). */
  presence: boolean;
  /** Start a new session at every connection (default), or keep the server's session (persistent subscriptions). */
  clean: boolean;
}

const KNOWN = ['url', 'clientId', 'username', 'password', 'ca', 'cert', 'key', 'prefix', 'groups', 'export', 'import', 'format', 'qos', 'qos1', 'retain', 'protocol', 'maxBufferedBytes', 'maxPayloadBytes', 'reconnectMinMs', 'reconnectMaxMs', 'keepalive', 'presence', 'clean'];

const bad = (what: string): never => {
  throw new QcopError('EINVAL', `mqtt: ${what}`);
};

function list(o: Record<string, unknown>, key: string): string[] {
  const v = o[key] ?? [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) bad(`${key} must be a list of channel names or patterns`);
  for (const p of v as string[]) {
    const why = patternProblem(p);
    if (why) bad(`${key} entry '${p}': ${why}`);
  }
  return v as string[];
}

function int(o: Record<string, unknown>, key: string, dflt: number, min: number, max: number): number {
  const v = o[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`${key} must be an integer from ${min} to ${max}`);
  return v as number;
}

function pem(o: Record<string, unknown>, key: string): Buffer | undefined {
  const file = o[key];
  if (file === undefined) return undefined;
  if (typeof file !== 'string' || file === '') return bad(`${key} must be a file name`);
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new QcopError('ENOENT', `mqtt: cannot read ${key} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A topic prefix: empty, or ending in `/`; no MQTT wildcard, no NUL; not starting with `$` (server topics). */
function prefixOf(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') return bad('prefix must be a string such as fleet/board-17/');
  if (/[+#\0]/.test(v)) bad(`prefix '${v}' must not hold +, # or NUL`);
  if (v.startsWith('$')) bad(`prefix '${v}' must not start with $ (topics of the server itself)`);
  if (v !== '' && !v.endsWith('/')) bad(`prefix '${v}' must end with /`);
  if (Buffer.byteLength(v) > 1024) bad('prefix is longer than 1024 bytes');
  return v;
}

function groupsOf(v: unknown, prefix: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 64) return bad('groups must be a list of at most 64 topic prefixes such as fleet/all/');
  const out = v.map((g) => prefixOf(g));
  for (const g of out) {
    if (g === '') bad('a group prefix must not be empty');
    if (prefix.startsWith(g) || g.startsWith(prefix)) bad(`group '${g}' and the prefix '${prefix}' must not contain one another`);
  }
  return out;
}

export function mqttOptions(o: Record<string, unknown>): MqttOptions {
  if (!o || typeof o !== 'object' || Array.isArray(o)) bad('the option must be an object');
  for (const k of Object.keys(o)) if (!KNOWN.includes(k)) bad(`unknown option '${k}'`);
  const url = o.url;
  if (typeof url !== 'string' || !/^(mqtts?|wss?):\/\/[^/]/.test(url)) bad(`url must be mqtt://HOST[:PORT], mqtts://, ws:// or wss://, not '${String(url)}'`);
  const prefix = prefixOf(o.prefix);
  const str = (k: string): string | undefined => {
    const v = o[k];
    if (v !== undefined && typeof v !== 'string') bad(`${k} must be a string`);
    return v as string | undefined;
  };
  const format = o.format ?? 'json';
  if (format !== 'json' && format !== 'cbor') bad(`format must be 'json' or 'cbor', not '${String(format)}'`);
  const qos = o.qos ?? 0;
  if (qos !== 0 && qos !== 1) bad('qos must be 0 or 1');
  const protocol = o.protocol ?? 'auto';
  if (protocol !== 5 && protocol !== 4 && protocol !== 'auto') bad("protocol must be 5, 4 (MQTT 3.1.1) or 'auto'");
  const bool = (k: string, d: boolean): boolean => {
    const v = o[k] ?? d;
    if (typeof v !== 'boolean') bad(`${k} must be true or false`);
    return v as boolean;
  };
  const defaultId = `qcop-${os.hostname()}${prefix ? '-' + prefix.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/_+$/, '') : ''}`.slice(0, 128);
  const clientId = str('clientId') ?? defaultId;
  if (clientId === '' || Buffer.byteLength(clientId) > 256) bad('clientId must be 1-256 bytes');
  const out: MqttOptions = {
    url: url as string,
    clientId,
    username: str('username'),
    password: str('password') ?? (str('username') !== undefined ? process.env.QCOP_MQTT_PASSWORD : undefined),
    tls: { ca: pem(o, 'ca'), cert: pem(o, 'cert'), key: pem(o, 'key') },
    prefix,
    groups: groupsOf(o.groups, prefix),
    export: list(o, 'export'),
    import: list(o, 'import'),
    format: format as PayloadFormat,
    qos: qos as 0 | 1,
    qos1: list(o, 'qos1'),
    retain: list(o, 'retain'),
    protocol: protocol as MqttOptions['protocol'],
    maxBufferedBytes: int(o, 'maxBufferedBytes', 1 << 20, 0, 1 << 30),
    maxPayloadBytes: int(o, 'maxPayloadBytes', 1 << 20, 16, 256 << 20),
    reconnectMinMs: int(o, 'reconnectMinMs', 500, 10, 600_000),
    reconnectMaxMs: int(o, 'reconnectMaxMs', 30_000, 10, 3_600_000),
    keepalive: int(o, 'keepalive', 30, 0, 65535),
    presence: bool('presence', true),
    clean: bool('clean', true),
  };
  if (out.reconnectMaxMs < out.reconnectMinMs) bad('reconnectMaxMs must not be less than reconnectMinMs');
  if (!!out.tls.cert !== !!out.tls.key) bad('cert and key go together');
  if (out.export.length + out.import.length === 0 && !out.presence) bad('nothing to bridge: give export, import or presence');
  return out;
}
