// The systems as seen by a benchmark process: qcop client (sockets, shm, shm with loans; qcop-acl is the socket client run as an unprivileged user), raw-broker client, raw peer-to-peer.
// Each transport offers subscribe / publish / onDrain / sync / link / close, and nothing more.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { OP_PUB, OP_SUB, OP_SUBACK, channelOf, frame, frameReader, opOf, payloadOf } from '../baseline/raw-wire.mjs';

function dial(path) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(path);
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
  });
}

/**
 * Writes through a cork held until the end of the tick, so a burst leaves in one writev per
 * socket rather than one syscall per frame (what the qcop client and any sane sender do too).
 */
function batchedWrite(sock, buf) {
  if (!sock.writableCorked) {
    sock.cork();
    process.nextTick(() => sock.uncork());
  }
  return sock.write(buf);
}

/** Resolves once every socket in `socks` has handed all its bytes to the kernel. */
async function drained(socks) {
  // 'drain' comes only after a write that returned false: below the high-water mark, poll.
  while (socks.some((s) => s.writableLength > 0 && !s.destroyed)) {
    const s = socks.find((x) => x.writableNeedDrain);
    await (s ? new Promise((r) => s.once('drain', r)) : new Promise((r) => setTimeout(r, 1)));
  }
}

/** qcop through its public client API: data travels as CBOR bytes and is decoded on receipt, as a user would. */
async function qcopTransport(cfg) {
  const { connect } = await import('../../dist/runtime/index.js');
  // 'qcop' is the socket path, shared memory switched off; 'qcop-shm' leaves large data to the pool
  // (send(Buffer, { transfer: true }): one copy into a slot); 'qcop-loan' writes them in place into a slot (client.loan).
  const loan = cfg.system === 'qcop-loan';
  const transfer = cfg.system === 'qcop-shm' ? { transfer: true } : undefined;
  const client = await connect({ socket: cfg.socket, name: cfg.name, waitForBroker: 5000, reconnect: false, shm: cfg.system === 'qcop-shm' || loan });
  // Whether large data really went through the pool, seen through the public poolInUse figure:
  // right after send() the slot is still held (its release needs the receiver and a round trip).
  const stats = { lost: 0, shm: false };
  // qcop-loan counts as the loan path only if every large loan lay in the pool (took a slot);
  // a large loan handed out as an ordinary Buffer would be copied into the pool by send().
  const loans = { pooled: 0, unpooled: 0 };
  const sendLoaned = (channel, payload) => {
    // The other systems reuse one pre-filled payload and the transport copies it (into a socket
    // frame, or for qcop-shm into a pool slot). With a loan the producer writes its data in place,
    // so all this benchmark writes is the 16-byte stamp the receivers read (f64 send time at 0,
    // kind at 8: worker.mjs); producing the data is the producer's work, left out for every
    // system alike. At or below the shm threshold a loan is an ordinary Buffer, sent as usual.
    const large = payload.length > 65536;
    const slotsBefore = large ? client.poolInUse.slots : 0;
    const b = client.loan(payload.length);
    if (large && b !== null) client.poolInUse.slots > slotsBefore ? loans.pooled++ : loans.unpooled++;
    // No slot free right now: send() holds the data and returns false, so the caller waits for
    // 'drain' (loan() arranged it); nothing is lost.
    if (b === null) return client.send(channel, 'data', payload);
    payload.copy(b, 0, 0, Math.min(16, payload.length));
    return client.send(channel, 'data', b);
  };
  const publish = (channel, payload) => {
    if (loan) {
      const ok = sendLoaned(channel, payload);
      stats.shm = loans.pooled > 0 && loans.unpooled === 0;
      return ok;
    }
    // qcop-shm hands its payload over (transfer): the burst never changes it, and the latency loop changes it
    // only after every receiver had the previous message.
    const ok = client.send(channel, 'data', payload, transfer);
    if (!stats.shm && payload.length > 65536 && client.poolInUse?.bytes > 0) stats.shm = true;
    return ok;
  };
  client.on('lost', (info) => (stats.lost += info.count));
  client.on('error', (err) => process.stderr.write(`bench worker ${cfg.name}: ${err.code} ${err.message}\n`));
  return {
    stats,
    async subscribe(channel, onPayload) {
      const l = client.listen(channel, (msg) => onPayload(msg.data));
      await l.ready;
    },
    async subscribeMany(channels, onPayload) {
      const ls = channels.map((ch) => client.listen(ch, (msg) => onPayload(msg.data)));
      await Promise.all(ls.map((l) => l.ready));
    },
    publish,
    onDrain: (fn) => client.once('drain', fn),
    sync: () => client.flush(),
    link: async () => {},
    close: () => client.close(),
  };
}

/** A client of the raw-broker baseline. */
async function rawBrokerTransport(cfg) {
  const sock = await dial(cfg.socket);
  const handlers = new Map();
  const acks = new Map();
  sock.on('data', frameReader((f) => {
    const op = opOf(f);
    if (op === OP_PUB) handlers.get(channelOf(f))?.(payloadOf(f));
    else if (op === OP_SUBACK) acks.get(channelOf(f))?.();
  }));
  const subscribeOne = (channel, onPayload) =>
    new Promise((resolve) => {
      handlers.set(channel, onPayload);
      acks.set(channel, resolve);
      sock.write(frame(OP_SUB, channel));
    });
  return {
    stats: { lost: 0 },
    subscribe: subscribeOne,
    subscribeMany: (channels, onPayload) => Promise.all(channels.map((ch) => subscribeOne(ch, onPayload))),
    publish: (channel, payload) => batchedWrite(sock, frame(OP_PUB, channel, payload)),
    onDrain: (fn) => sock.once('drain', fn),
    sync: () => drained([sock]),
    link: async () => {},
    close: () => sock.destroy(),
  };
}

/**
 * raw-p2p, the floor: every process listens on its own socket (`cfg.self`); a sender connects
 * straight to the sockets listed for a channel in `cfg.peers` and writes each frame to all of them.
 */
async function rawP2pTransport(cfg) {
  const handlers = new Map();
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', frameReader((f) => handlers.get(channelOf(f))?.(payloadOf(f))));
  });
  try {
    fs.unlinkSync(cfg.self);
  } catch {}
  await new Promise((resolve) => server.listen(cfg.self, resolve));
  const out = new Map();
  const all = [];
  return {
    stats: { lost: 0 },
    subscribe: async (channel, onPayload) => void handlers.set(channel, onPayload),
    subscribeMany: async (channels, onPayload) => channels.forEach((ch) => handlers.set(ch, onPayload)),
    async link() {
      for (const [channel, paths] of Object.entries(cfg.peers ?? {})) {
        const socks = await Promise.all(paths.map(dial));
        out.set(channel, socks);
        all.push(...socks);
      }
    },
    publish(channel, payload) {
      const socks = out.get(channel);
      if (!socks) return true;
      const f = frame(OP_PUB, channel, payload);
      let ok = true;
      for (const s of socks) ok = batchedWrite(s, f) && ok;
      return ok;
    },
    onDrain(fn) {
      // Resume once every peer that pushed back has drained.
      Promise.all(all.filter((s) => s.writableNeedDrain).map((s) => new Promise((r) => s.once('drain', r)))).then(fn);
    },
    sync: () => drained(all),
    close() {
      for (const s of all) s.destroy();
      server.close();
    },
  };
}

export const TRANSPORTS = { qcop: qcopTransport, 'qcop-acl': qcopTransport, 'qcop-bundle': qcopTransport, 'qcop-top': qcopTransport, 'qcop-shm': qcopTransport, 'qcop-loan': qcopTransport, 'raw-broker': rawBrokerTransport, 'raw-p2p': rawP2pTransport };
