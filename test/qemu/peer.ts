// Owns: the library-side helper processes of the QEMU suite (replier, shared-memory lock workers, large-message sender and receiver), bundled for Node 18 from the same sources as the target.
import { createHash, randomBytes } from 'node:crypto';
import * as readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { connect } from '../../runtime/index.js';
import { SharedMemory } from '../../runtime/shm/index.js';

export { connect };

const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const untilStdinEnds = () => new Promise<void>((r) => { process.stdin.on('end', r); process.stdin.on('close', r); process.stdin.resume(); });

type Role = (args: string[]) => Promise<void>;

const roles: Record<string, Role> = {
  /** Answers every call on the channel with what it got and this process's arch. */
  async replier([socket, channel]) {
    const client = await connect({ socket, name: 'qemu-replier' });
    const l = client.listen(channel, (msg) => msg.reply?.({ echo: msg.data ?? null, message: msg.message, arch: process.arch }));
    await l.ready;
    out({ ready: true });
    await untilStdinEnds();
    await client.close();
  },

  /** Creates the counter segment, prints ready; on a `read` line prints { count }; detaches at stdin end. */
  async 'shm-owner'([key, size]) {
    const seg = await SharedMemory.create(key, Number(size));
    seg.buffer.writeInt32LE(0, 0);
    out({ ready: true });
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      if (line.trim() === 'read') {
        await seg.lock({ timeoutMs: 20000 });
        out({ count: seg.buffer.readInt32LE(0) });
        seg.unlock();
      }
    }
    seg.detach();
  },

  /** Increments the counter `n` times under the segment lock, yielding to the event loop while holding it. */
  async 'shm-worker'([key, n]) {
    const seg = await SharedMemory.attach(key);
    out({ ready: true });
    let recovered = 0;
    for (let i = 0; i < Number(n); i++) {
      const r = await seg.lock({ timeoutMs: 30000 });
      if (r.recovered) recovered++;
      const v = seg.buffer.readInt32LE(0);
      await new Promise((res) => setImmediate(res));
      seg.buffer.writeInt32LE(v + 1, 0);
      seg.unlock();
    }
    seg.detach();
    out({ done: true, recovered });
  },

  /** Takes the lock and keeps it until killed. */
  async 'shm-holder'([key]) {
    const seg = await SharedMemory.attach(key);
    await seg.lock({ timeoutMs: 20000 });
    out({ locked: true });
    await new Promise(() => {});
  },

  /** Takes the lock once and prints whether it was recovered from a dead holder. */
  async 'shm-lock-once'([key]) {
    const seg = await SharedMemory.attach(key);
    const r = await seg.lock({ timeoutMs: 20000 });
    seg.unlock();
    seg.detach();
    out({ recovered: r.recovered });
  },

  /** Receives one message on the channel and prints its size and digest. */
  async 'big-listen'([socket, channel]) {
    const client = await connect({ socket, name: 'qemu-big-listen' });
    const got = new Promise<Uint8Array>((resolve) => {
      const l = client.listen(channel, (msg) => resolve(msg.data as Uint8Array));
      l.ready.then(() => out({ ready: true }));
    });
    const data = await got;
    out({ len: data.length, sha256: sha(data) });
    await client.close();
  },

  /** Sends `bytes` random bytes with send() (the path that uses the shared-memory pool), then flushes; prints digest, flush result and broker stats. */
  async 'big-send'([socket, channel, bytes]) {
    const client = await connect({ socket, name: 'qemu-big-send' });
    const data = randomBytes(Number(bytes));
    client.send(channel, 'frame(bytes)', data);
    const flushed = await client.flush();
    const stats = await client.stats().catch(() => undefined);
    out({ sha256: sha(data), flushed, stats });
    await client.close();
  },
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [role, ...args] = process.argv.slice(2);
  const fn = roles[role];
  if (!fn) {
    process.stderr.write(`EINVAL: unknown role '${role}' (${Object.keys(roles).join(', ')})\n`);
    process.exitCode = 2;
  } else {
    fn(args).then(() => process.exit(0), (err) => {
      process.stderr.write(`${err?.code ?? 'EFAIL'}: ${err?.stack ?? err}\n`);
      process.exit(1);
    });
  }
}
