// The conformance suite over serial lines (docs/SERIAL.md §8): a spawned qcopd with `serialClients`
// on one end of socat pty pairs, each client dialling `serial://` on the other end of its own pair
// (a line carries one connection). A pty ignores the baud rate, so nothing paces the 200 KiB test.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openDevice } from '../../channels/serial/dial.js';
import { connect, type Client } from '../../runtime/index.js';
import { cleanup, tempDir, waitFor } from '../helpers/procs.js';
import { conformance } from './suite.js';
import { spawnQcopd, stop, type TcpBroker } from './net.js';
import { PtyPair } from './pty.js';

/** Pairs per test: the suite opens at most four clients in one test. */
const PAIRS = 6;

/** The broker's `carriers.serial.clients` figures. */
async function lineStats(socket: string): Promise<Array<Record<string, unknown>>> {
  const c = await connect({ socket });
  try {
    const stats = (await c.stats()) as { carriers?: { serial?: { clients?: Array<Record<string, unknown>> } } };
    return stats.carriers?.serial?.clients ?? [];
  } finally {
    await c.close();
  }
}

/** Waits until the broker has every serial client device open (and has sent its reset on each). */
async function devicesOpen(socket: string, n = PAIRS): Promise<void> {
  await waitFor(async () => {
    const clients = await lineStats(socket).catch(() => []);
    return clients.length === n && clients.every((x) => x.state === 'open');
  }, 10000, 'the broker to open its serial devices');
}

conformance('serial', async () => {
  const dir = tempDir();
  const pairs = await Promise.all([...Array(PAIRS).keys()].map((i) => new PtyPair(fs.mkdtempSync(path.join(dir, `p${i}-`))).start()));
  const config = path.join(dir, 'broker.json');
  fs.writeFileSync(config, JSON.stringify({ serialClients: pairs.map((p) => ({ device: p.a, baud: 4_000_000, retryMs: 50 })) }));
  const start = async (socket?: string) => {
    const b = await spawnQcopd(['--config', config], socket);
    await devicesOpen(b.socket);
    return b;
  };
  let broker: TcpBroker = await start();
  const socket = broker.socket;
  let next = 0;
  return {
    connect: (options) => {
      if (next >= PAIRS) throw new Error(`more than ${PAIRS} clients in one test`);
      return connect({ url: `serial://${pairs[next++]!.b}?baud=4000000`, ...options });
    },
    async restartBroker() {
      await stop(broker, 'SIGKILL');
      broker = await start(socket);
    },
    async cleanup() {
      await stop(broker);
      await Promise.all(pairs.map((p) => p.stop()));
    },
  };
});

// Line noise: a relay between two pty pairs (broker ⇄ relay ⇄ client) corrupts one chunk on demand.
const noise = suite('serial line noise');
noise('a corrupted record ends the connection (counted); the client reconnects and its listener works again', async () => {
  const dir = tempDir();
  const [near, far, plain] = await Promise.all([0, 1, 2].map((i) => new PtyPair(fs.mkdtempSync(path.join(dir, `n${i}-`))).start()));
  const config = path.join(dir, 'broker.json');
  fs.writeFileSync(config, JSON.stringify({ serialClients: [near!.a, plain!.a].map((device) => ({ device, retryMs: 50 })) }));
  const broker = await spawnQcopd(['--config', config]);
  await devicesOpen(broker.socket, 2);
  const toBroker = await openDevice(near!.b, 115200);
  const toClient = await openDevice(far!.a, 115200);
  const flip = { toBroker: false, toClient: false };
  const mangle = (d: Buffer, k: keyof typeof flip) => {
    if (!flip[k] || d.length < 8) return d;
    flip[k] = false;
    const c = Buffer.from(d);
    c[c.length >> 1] ^= 0x55;
    return c;
  };
  toBroker.on('data', (d: Buffer) => toClient.write(mangle(d, 'toClient')));
  toClient.on('data', (d: Buffer) => toBroker.write(mangle(d, 'toBroker')));
  const clients: Client[] = [];
  try {
    const a = await connect({ url: `serial://${far!.b}`, reconnectMaxDelayMs: 200 });
    const b = await connect({ url: `serial://${plain!.b}` });
    clients.push(a, b);
    a.on('error', () => {});
    const got: unknown[] = [];
    await a.listen('noise/x', (m) => got.push(m.data)).ready;
    for (const k of ['toClient', 'toBroker'] as const) {
      const down = new Promise((r) => a.once('disconnected', r));
      const up = new Promise((r) => a.once('reconnected', r));
      flip[k] = true;
      // Enough traffic in that direction for the relay to corrupt a chunk of it.
      if (k === 'toClient') await b.deliver('noise/x', 'm()', Buffer.alloc(2000, 7));
      else await a.isRegistered('noise/x').catch(() => false);
      await down;
      await up;
      await waitFor(async () => (await b.isRegistered('noise/x')), 5000, 'the listener re-registered');
      assert.is(await b.deliver('noise/x', 'm()', k), 1, `delivered after the ${k} corruption`);
      await waitFor(() => got.includes(k), 5000, `the message after the ${k} corruption`);
    }
    const line = (await lineStats(broker.socket)).find((x) => x.device === near!.a)!;
    assert.ok((line.crcErrors as number) + (line.malformed as number) >= 1, `the broker counted the bad record: ${JSON.stringify(line)}`);
    assert.ok((line.accepted as number) >= 3, 'the client opened a new connection each time');
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await stop(broker);
    await new Promise<void>((r) => toBroker.close(() => toClient.close(() => r())));
    await Promise.all([near, far, plain].map((p) => p!.stop()));
  }
});
noise.run();

process.on('exit', cleanup);
