// What the large-message tests share: an in-process broker, clients and receiver processes, all gone after each test.
import * as path from 'node:path';
import { connect, startBroker, type Broker, type Client } from '../../runtime/index.js';
import { collectGarbage } from '../../runtime/shm/index.js';
import { cleanup, Proc, tempDir } from '../helpers/procs.js';

const FIX = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures');

/** One test file's broker and clients (each test file runs in a process of its own). */
export const pool = {
  broker: null as Broker | null,
  clients: [] as Client[],

  /** Starts a broker on a fresh socket; returns the socket path. */
  async setup(options: Record<string, unknown> = {}): Promise<string> {
    const socket = path.join(tempDir(), 'qcop.sock');
    pool.broker = await startBroker({ socket, ...options });
    return socket;
  },

  /** A client closed after the test; errors are the test's to look at, not warnings. */
  async client(socket: string, options: Record<string, unknown> = {}): Promise<Client> {
    const c = await connect({ socket, ...options });
    c.on('error', () => {});
    pool.clients.push(c);
    return c;
  },

  /** A receiver process (fixtures/shm-receiver.mjs) printing one JSON line per message. */
  async receiver(socket: string, channel: string, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
    const p = new Proc(process.execPath, [path.join(FIX, 'shm-receiver.mjs'), socket, channel], env);
    await p.waitJson((v) => v.ev === 'ready', 10000, 'receiver ready');
    return p;
  },

  /** Closes the clients, kills the processes, stops the broker and removes stale segments. */
  async teardown(): Promise<void> {
    for (const c of pool.clients.splice(0)) await c.close();
    cleanup();
    await pool.broker?.close();
    pool.broker = null;
    collectGarbage();
  },
};
