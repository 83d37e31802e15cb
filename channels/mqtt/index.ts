// The MQTT carrier's entry point (SPEC §11, docs/MQTT.md): one bridge from the `mqtt` broker option. Only this folder loads MQTT.js.
import type { Broker, BrokerOptions, Carrier } from '../../runtime/index.js';
import { MqttBridge, loadMqtt } from './bridge.js';
import { mqttOptions } from './options.js';

/** Checks the options (and reads the TLS files) without touching the network. */
export function check(options: BrokerOptions): void {
  mqttOptions(options.mqtt ?? {});
}

/** Loads MQTT.js before the broker claims its socket, so a missing package fails the start at once. */
export async function prepare(): Promise<void> {
  await loadMqtt();
}

export async function start(broker: Broker, options: BrokerOptions): Promise<Carrier> {
  const bridge = new MqttBridge(broker, mqttOptions(options.mqtt ?? {}));
  await bridge.start();
  return { stats: () => bridge.stats(), close: () => bridge.close() };
}
