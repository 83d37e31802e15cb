// The TCP carrier's entry point: the broker's TCP/TLS listener and its links, started from broker options.
import type { Broker, BrokerOptions, Carrier } from '../../runtime/index.js';
import { Link } from './link.js';
import { linkOptions, listenOptions } from './options.js';
import { TcpListener } from './server.js';

export { tcpTarget, type TcpTransportOptions } from './dial.js';

/** Checks the options without opening anything (files are read, addresses parsed). */
export function check(options: BrokerOptions): void {
  if (options.tcp !== undefined) listenOptions(options);
  (options.links ?? []).forEach((l, i) => linkOptions(l, i));
}

/** Starts what `options` asks for: a listener when `tcp` is set, one link per `links` entry. */
export async function start(broker: Broker, options: BrokerOptions): Promise<Carrier> {
  // Check everything before opening anything, so a bad option leaves no half-started carrier.
  const listen = options.tcp !== undefined ? listenOptions(options) : null;
  const links = (options.links ?? []).map((l, i) => new Link(broker, linkOptions(l, i)));
  let listener: TcpListener | null = null;
  if (listen) {
    listener = new TcpListener(broker, listen);
    await listener.listen();
    const note = listen.tls?.requireClientCert ? ' (client certificates required)' : listener.tokenFile ? ` (token for local clients in ${listener.tokenFile})` : '';
    process.stderr.write(`qcopd: listening on ${listener.url}${note}\n`);
  }
  for (const l of links) await l.start();
  return {
    stats: () => ({ ...(listener ? { listener: listener.stats() } : {}), links: links.map((l) => l.stats()) }),
    async close() {
      await Promise.all([listener?.close(), ...links.map((l) => l.close())]);
    },
  };
}
