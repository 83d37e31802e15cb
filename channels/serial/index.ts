// The serial carrier's entry point: one link per `serial` entry of the broker options.
import { QcopError, type Broker, type BrokerOptions } from '../../runtime/index.js';
import { SerialLink } from './link.js';
import { serialOptions } from './options.js';
import { Port } from './port.js';

/** Checks the options without opening any device. */
export function check(options: BrokerOptions): void {
  const devices = new Set<string>();
  for (const [i, o] of (options.serial ?? []).entries()) {
    const c = serialOptions(o, i);
    if (devices.has(c.device)) throw new QcopError('EINVAL', `serial device ${c.device} is configured twice`);
    devices.add(c.device);
  }
}

export async function start(broker: Broker, options: BrokerOptions): Promise<{ stats(): Record<string, unknown>; close(): Promise<void> }> {
  check(options);
  const checked = (options.serial ?? []).map((o, i) => serialOptions(o, i));
  const SerialPort = await Port.load();
  const links = checked.map((c) => new SerialLink(broker, c, new Port(SerialPort, c.device, c.baud, c.retryMs)));
  for (const l of links) await l.start();
  return {
    stats: () => ({ links: links.map((l) => l.stats()) }),
    close: async () => {
      await Promise.all(links.map((l) => l.close()));
    },
  };
}
