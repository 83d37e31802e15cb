// connect(): choose the broker (socket, URL, in-process), wait for it if asked, complete the handshake.
import type { Broker } from '../broker/broker.js';
import { defaultPathToCheck, defaultSocketPath } from '../broker/socket-path.js';
import { QcopError } from '../protocol/errors.js';
import { Client, type ClientOptions } from './client.js';
import { targetFor, unixTarget, type Target } from './dial.js';

/** Options of `connect()` (SPEC §3). */
export interface ConnectOptions extends ClientOptions {
  /** Unix socket path (default: $QCOP_SOCKET, $XDG_RUNTIME_DIR/qcop/qcop.sock, ... SPEC §6). */
  socket?: string;
  /** Broker URL instead of a socket: `unix:/path`, `tcp://host:port`, `tls://host:port`. */
  url?: string;
  /** Connect to a broker running in this process (no socket); a function is asked again at each reconnection. */
  broker?: Broker | (() => Broker);
  /** Keep trying this many milliseconds while no broker answers (default 0: fail at once). */
  waitForBroker?: number;
  /** Options passed to the URL's transport (TLS files, token...). */
  transport?: Record<string, unknown>;
}

/** Connects to a broker; rejects with ENOBROKER naming the socket when none answers, EACCES when another user controls the default socket's folder. */
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const target = await chooseTarget(options);
  const waitMs = options.waitForBroker ?? 0;
  if (!Number.isFinite(waitMs) || waitMs < 0) throw new QcopError('EINVAL', 'waitForBroker must be a number of milliseconds');
  const deadline = Date.now() + waitMs;
  let delay = 25;
  for (;;) {
    const client = new Client(target, options);
    try {
      await client.open();
      return client;
    } catch (err) {
      if (err instanceof QcopError && err.code !== 'ENOBROKER') throw err;
      if (Date.now() + delay > deadline) {
        if (err instanceof QcopError) throw err;
        const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new QcopError('ENOBROKER', `no broker answers on ${target.where} (${why})`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 500);
    }
  }
}

async function chooseTarget(options: ConnectOptions): Promise<Target> {
  if (options.broker) {
    const given = options.broker;
    const current = typeof given === 'function' ? given : () => given;
    return { where: `in-process broker ${current().options.name}`, local: true, dial: async () => current().connectInProcess() };
  }
  if (options.url) return targetFor(options.url, options.transport ?? {});
  if (options.socket !== undefined) return unixTarget(options.socket);
  // SPEC §8: the default folder of a non-root user is checked before every dial.
  const checked = defaultPathToCheck();
  return unixTarget(checked ?? defaultSocketPath(), checked !== null);
}
