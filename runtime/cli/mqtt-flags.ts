// The --mqtt* flags of `qcop broker` (docs/MQTT.md): they fill the `mqtt` option, over what --config gave.
import type { BrokerOptions } from '../broker/options.js';
import { UsageError, listFlag, numberFlag, stringFlag, type FlagSpec, type ParsedArgs } from './table.js';

export const MQTT_FLAGS: Record<string, FlagSpec> = {
  mqtt: { type: 'string', description: 'bridge to the MQTT server at this URL (mqtt://host:1883, mqtts://, ws://, wss://); off by default' },
  'mqtt-prefix': { type: 'string', description: 'topic prefix: channel a/b is topic <prefix>a/b (e.g. fleet/b1/)' },
  'mqtt-group': { type: 'string', multiple: true, description: 'group topic prefix whose topics are imported too (e.g. fleet/all/: one publish reaches every board); repeatable' },
  'mqtt-export': { type: 'string', multiple: true, description: 'channel pattern published to MQTT; repeatable' },
  'mqtt-import': { type: 'string', multiple: true, description: 'channel pattern taken from MQTT into qcop; repeatable' },
  'mqtt-format': { type: 'string', description: "payload format: 'json' (data as JSON text, default) or 'cbor' (lossless [message, data])" },
  'mqtt-qos': { type: 'string', description: 'QoS of exported messages: 0 (default) or 1' },
  'mqtt-qos1': { type: 'string', multiple: true, description: 'channel pattern always published with QoS 1; repeatable' },
  'mqtt-retain': { type: 'string', multiple: true, description: 'channel pattern published retained (QoS 1); repeatable' },
  'mqtt-client-id': { type: 'string', description: 'MQTT client id (default qcop-<hostname>-<prefix>)' },
  'mqtt-username': { type: 'string', description: 'MQTT user name; the password is read from $QCOP_MQTT_PASSWORD' },
  'mqtt-ca': { type: 'string', description: 'CA PEM file that signs the MQTT server certificate (mqtts://, wss://)' },
  'mqtt-cert': { type: 'string', description: "this board's client certificate PEM file (with --mqtt-key)" },
  'mqtt-key': { type: 'string', description: "this board's client key PEM file" },
  'mqtt-protocol': { type: 'string', description: "MQTT version: 'auto' (5, else 3.1.1; default), '5' or '4' (3.1.1)" },
  'mqtt-max-buffered-bytes': { type: 'string', description: 'bytes of exports kept while the server is away or unacknowledged (default 1048576); the rest is dropped and counted' },
};

/** Sets `o.mqtt` from the flags; --mqtt-* without --mqtt (or a config `mqtt`) is a usage error. */
export function mqttFlags(args: ParsedArgs, o: BrokerOptions): void {
  const given = Object.keys(MQTT_FLAGS).filter((k) => k !== 'mqtt' && args.flags[k] !== undefined && !(Array.isArray(args.flags[k]) && (args.flags[k] as unknown[]).length === 0));
  const url = stringFlag(args, 'mqtt');
  if (!url && given.length === 0) return;
  if (!url && o.mqtt === undefined) throw new UsageError(`--${given[0]} needs --mqtt URL`);
  const m: Record<string, unknown> = { ...(o.mqtt ?? {}) };
  if (url) m.url = url;
  const str = (flag: string, key: string) => {
    const v = stringFlag(args, flag);
    if (v !== undefined) m[key] = v;
  };
  const list = (flag: string, key: string) => {
    const v = listFlag(args, flag);
    if (v.length > 0) m[key] = v;
  };
  str('mqtt-prefix', 'prefix');
  list('mqtt-group', 'groups');
  list('mqtt-export', 'export');
  list('mqtt-import', 'import');
  str('mqtt-format', 'format');
  list('mqtt-qos1', 'qos1');
  list('mqtt-retain', 'retain');
  str('mqtt-client-id', 'clientId');
  str('mqtt-username', 'username');
  str('mqtt-ca', 'ca');
  str('mqtt-cert', 'cert');
  str('mqtt-key', 'key');
  const qos = stringFlag(args, 'mqtt-qos');
  if (qos !== undefined) {
    if (qos !== '0' && qos !== '1') throw new UsageError('--mqtt-qos must be 0 or 1');
    m.qos = Number(qos);
  }
  const protocol = stringFlag(args, 'mqtt-protocol');
  if (protocol !== undefined) {
    if (!['auto', '5', '4'].includes(protocol)) throw new UsageError("--mqtt-protocol must be 'auto', '5' or '4'");
    m.protocol = protocol === 'auto' ? 'auto' : Number(protocol);
  }
  const max = numberFlag(args, 'mqtt-max-buffered-bytes', { integer: true, min: 0 });
  if (max !== undefined) m.maxBufferedBytes = max;
  o.mqtt = m;
}
