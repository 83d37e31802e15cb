#!/usr/bin/env node
// Quick comparison, in one run: 1 MiB messages through the shm pool vs inline frames vs a raw Unix-socket peer-to-peer copy.
// Usage: npm run build && node bench/shm-quick.mjs [count]     (each role below runs as its own process)
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const LIB = path.join(path.dirname(SELF), '..', 'dist', 'runtime', 'index.js');
const MiB = 1 << 20;
/** Timed one-way sends per size, after a few untimed ones (pool segments created, mappings cached). */
const LATENCY_SAMPLES = 50;
const WARMUP = 3;
const now = () => performance.timeOrigin + performance.now(); // one clock for every process of the machine
const [role, ...args] = process.argv.slice(2);
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');

function stamp(size) {
  const b = Buffer.alloc(size, 1);
  b.writeDoubleLE(now(), 0);
  return b;
}

const roles = {
  // A broker; argv: socket, maxFrameBytes.
  async broker(socket, maxFrameBytes) {
    const { startBroker } = await import(LIB);
    await startBroker({ socket, maxFrameBytes: Number(maxFrameBytes) });
    out({ ready: true });
  },
  // Receives on 'bench', answers on 'bench/ack' with the one-way latency, or the elapsed time after `count` messages.
  async rx(socket, count) {
    const { connect } = await import(LIB);
    const c = await connect({ socket });
    let n = 0;
    let first = 0;
    let lost = 0;
    // A slow receiver's drops count as arrivals, so the run ends; the figure then includes them (printed as lost).
    c.on('lost', ({ count: k }) => {
      lost += k;
      n += k;
      if (n >= Number(count)) c.send('bench/ack', 'done', [now() - first, lost]);
    });
    const l = c.listen('bench', (msg) => {
      const b = msg.bytes; // zero copy; the CBOR byte-string head is 5 bytes for these sizes
      const ts = b.readDoubleLE(5);
      if (!first) first = ts;
      if (msg.message === 'lat') c.send('bench/ack', 'ack', now() - ts);
      else if (++n === Number(count)) c.send('bench/ack', 'done', [now() - first, lost]);
    });
    await l.ready;
    out({ ready: true });
  },
  // Sends; argv: socket, shm (on|off|loan), size, count. Every mode produces every message's bytes
  // once, then stamps it: into a new Buffer (on, off, raw), or in place in the pool with `loan`
  // (client.loan), where send() then writes only a descriptor.
  async tx(socket, shm, size, count) {
    const { connect } = await import(LIB);
    const c = await connect({ socket, shm: shm !== 'off', maxPoolBytes: 256 * MiB });
    const produce = async (n) => {
      if (shm !== 'loan') return stamp(n);
      let b;
      while (!(b = c.loan(n))) await new Promise((r) => c.once('drain', r));
      b.fill(1);
      b.writeDoubleLE(now(), 0);
      return b;
    };
    const acks = [];
    let wake = () => {};
    c.listen('bench/ack', (m) => { acks.push(m.data); wake(); });
    const ack = () => new Promise((r) => { if (acks.length) r(acks.shift()); else wake = () => { wake = () => {}; r(acks.shift()); }; });
    await new Promise((r) => setTimeout(r, 100));
    const lat = [];
    for (let i = -WARMUP; i < LATENCY_SAMPLES; i++) {
      c.send('bench', 'lat', await produce(Number(size)));
      const ms = await ack();
      if (i >= 0) lat.push(ms);
    }
    for (let i = 0; i < Number(count); i++) {
      if (!c.send('bench', 'thr', await produce(Number(size)))) await new Promise((r) => c.once('drain', r));
    }
    const [ms, lost] = await ack();
    lat.sort((a, b) => a - b);
    out({ latencyMs: lat[lat.length >> 1], throughputMiBs: ((Number(count) - lost) * Number(size)) / MiB / (ms / 1000), lost });
    await c.close();
  },
  // Raw peer to peer: the receiver parses [u32 length][payload] and acks like rx.
  async rawrx(socket, count) {
    const server = net.createServer((s) => {
      let parts = [];
      let have = 0;
      let n = 0;
      let first = 0;
      s.on('data', (d) => {
        parts.push(d);
        have += d.length;
        while (have >= 5) {
          if (parts[0].length < 5) parts = [Buffer.concat(parts, have)];
          const len = parts[0].readUInt32LE(0);
          if (have < len) return;
          // A receiver owns its bytes: exactly one copy per frame, as the broker path does (and no more).
          let frame;
          if (parts[0].length >= len) {
            frame = Buffer.from(parts[0].subarray(0, len));
            parts[0] = parts[0].subarray(len);
            if (parts[0].length === 0) parts.shift();
          } else {
            const all = Buffer.concat(parts, have);
            frame = all.subarray(0, len);
            parts = all.length > len ? [all.subarray(len)] : [];
          }
          have -= len;
          const ts = frame.readDoubleLE(5);
          if (!first) first = ts;
          const lat = frame[4] === 1;
          const reply = Buffer.alloc(8);
          if (lat) reply.writeDoubleLE(now() - ts, 0);
          else if (++n === Number(count)) reply.writeDoubleLE(now() - first, 0);
          else continue;
          s.write(reply);
        }
      });
    });
    server.listen(socket, () => out({ ready: true }));
  },
  async rawtx(socket, size, count) {
    const s = net.createConnection(socket);
    await new Promise((r) => s.once('connect', r));
    const acks = [];
    let wake = () => {};
    let pending = Buffer.alloc(0);
    s.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 8) { acks.push(pending.readDoubleLE(0)); pending = pending.subarray(8); wake(); }
    });
    const ack = () => new Promise((r) => { if (acks.length) r(acks.shift()); else wake = () => { wake = () => {}; r(acks.shift()); }; });
    const frame = (lat) => {
      const b = stamp(Number(size) + 5);
      b.copy(b, 5, 0, 8);
      b.writeUInt32LE(b.length, 0);
      b[4] = lat ? 1 : 0;
      return b;
    };
    const lat = [];
    for (let i = -WARMUP; i < LATENCY_SAMPLES; i++) {
      s.write(frame(true));
      const ms = await ack();
      if (i >= 0) lat.push(ms);
    }
    for (let i = 0; i < Number(count); i++) {
      if (!s.write(frame(false))) await new Promise((r) => s.once('drain', r));
    }
    const ms = await ack();
    lat.sort((a, b) => a - b);
    out({ latencyMs: lat[lat.length >> 1], throughputMiBs: (Number(count) * Number(size)) / MiB / (ms / 1000) });
    s.destroy();
  },
};

function run(r, ...a) {
  const child = spawn(process.execPath, [SELF, r, ...a.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  let buf = '';
  const waiters = [];
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  const line = () => new Promise((res) => { const t = () => (lines.length ? res(lines.shift()) : waiters.push(t)); t(); });
  return { child, line };
}

async function scenario(name, size, count, { shm = 'on', raw = false, maxFrame = MiB } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-shmq-'));
  const socket = path.join(dir, 's.sock');
  const procs = [];
  try {
    if (raw) {
      procs.push(run('rawrx', socket, count));
      await procs[0].line();
      procs.push(run('rawtx', socket, size, count));
    } else {
      procs.push(run('broker', socket, maxFrame));
      await procs[0].line();
      procs.push(run('rx', socket, count));
      await procs[1].line();
      procs.push(run('tx', socket, shm, size, count));
    }
    const r = await procs.at(-1).line();
    // Let the sender close its client, so its pool goes with it rather than by garbage collection.
    const tx = procs.at(-1).child;
    await Promise.race([new Promise((res) => tx.once('exit', res)), new Promise((res) => setTimeout(res, 5000))]);
    console.log(`${name.padEnd(44)} ${(size / 1024).toFixed(0).padStart(6)} KiB  ${r.throughputMiBs.toFixed(0).padStart(6)} MiB/s  ${r.latencyMs.toFixed(3).padStart(8)} ms one-way (median)${r.lost ? `  (${r.lost} dropped for the slow receiver)` : ''}`);
    return r;
  } finally {
    for (const p of procs) p.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (roles[role]) {
  await roles[role](...args);
} else {
  const count = Number(process.argv[2] ?? 300);
  console.log(`qcop shm-quick: ${count} messages per throughput run, ${LATENCY_SAMPLES} for latency; node ${process.version}, ${os.cpus().length} cpus`);
  const inline = await scenario('inline through broker (maxFrameBytes 2 MiB)', MiB, count, { shm: 'off', maxFrame: 2 * MiB });
  const rows = [];
  for (const size of [(64 << 10) + 1, 256 << 10, MiB, 4 * MiB, 16 * MiB]) {
    const n = Math.max(20, Math.min(count, Math.round((256 * MiB) / size)));
    rows.push({
      size,
      raw: await scenario('raw Unix socket peer to peer', size, n, { raw: true }),
      copy: await scenario('shm pool, send(Buffer): one copy', size, n),
      loan: await scenario('shm pool, loan(): written in place', size, n, { shm: 'loan' }),
    });
  }
  const at = (size) => rows.find((r) => r.size === size);
  const m = at(MiB);
  const flat = (k) => (rows.at(-1)[k].latencyMs / rows[0][k].latencyMs).toFixed(1);
  console.log(`1 MiB throughput vs raw peer to peer: send(Buffer) ${(m.copy.throughputMiBs / m.raw.throughputMiBs).toFixed(2)}x, loan ${(m.loan.throughputMiBs / m.raw.throughputMiBs).toFixed(2)}x; send(Buffer) vs inline ${(m.copy.throughputMiBs / inline.throughputMiBs).toFixed(2)}x`);
  console.log(`1 MiB latency vs raw peer to peer: send(Buffer) ${(m.copy.latencyMs / m.raw.latencyMs).toFixed(2)}x, loan ${(m.loan.latencyMs / m.raw.latencyMs).toFixed(2)}x`);
  console.log(`latency 16 MiB / 64 KiB: raw ${flat('raw')}x, send(Buffer) ${flat('copy')}x, loan ${flat('loan')}x`);
}
