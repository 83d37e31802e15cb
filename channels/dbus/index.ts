// The D-Bus carrier's entry point: one bridge from the `dbus` broker option. Only this folder loads dbus-next.
import type { Broker, BrokerOptions, Carrier } from '../../runtime/index.js';
import { DbusBridge, loadDbus } from './bridge.js';
import { dbusOptions } from './options.js';

/** Checks the options without touching the bus. */
export function check(options: BrokerOptions): void {
  dbusOptions(options.dbus ?? {});
}

/** Loads dbus-next before the broker claims its socket, so a missing package fails the start at once. */
export async function prepare(): Promise<void> {
  await loadDbus();
}

export async function start(broker: Broker, options: BrokerOptions): Promise<Carrier> {
  const bridge = new DbusBridge(broker, dbusOptions(options.dbus ?? {}));
  await bridge.start();
  return { stats: () => bridge.stats(), close: () => bridge.close() };
}
