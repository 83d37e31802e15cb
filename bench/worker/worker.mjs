// One benchmark process: a role (pinger, echo, source, sink, filler) over one transport, driven over IPC.
// argv[2] is the JSON config; the coordinator sends {op} messages and gets {ev} messages back.
import { TRANSPORTS } from './transports.mjs';

const cfg = JSON.parse(process.argv[2]);
const now = () => Number(process.hrtime.bigint()); // CLOCK_MONOTONIC: comparable across processes
const MARK = 4096;
const tell = (msg) => process.send(msg);
const ops = new Map();
process.on('message', (m) => ops.get(m.op)?.(m));
process.on('disconnect', () => process.exit(0));
// A clean exit lets the runtime release what it holds (the shm pool's segments) before the process goes.
ops.set('exit', async () => {
  await Promise.race([Promise.resolve(t?.close()), new Promise((r) => setTimeout(r, 500))]).catch(() => {});
  process.exit(0);
});

/** A view that has Buffer's read methods, whatever Uint8Array the transport handed over. */
const asBuf = (u) => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

/** Payload layout: f64 send time (ns) at 0, kind at 8 (0 timed, 1 warm-up, BURST counted only), filler. */
const BURST = 2;
function makePayload(size, kind = 0) {
  const b = Buffer.alloc(Math.max(size, 16), 0x5a);
  b[8] = kind;
  return b;
}

function percentiles(values) {
  const v = Float64Array.from(values).sort();
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  let sum = 0;
  for (const x of v) sum += x;
  return { n: v.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), min: v[0], max: v[v.length - 1], mean: sum / v.length };
}

const cpuOf = (since) => {
  const c = process.cpuUsage(since);
  return c.user + c.system;
};

let t = null;
t = await TRANSPORTS[cfg.system](cfg);

const roles = {
  /** S1/S7: answers every ping on `cfg.in` with the same data on `cfg.out`. */
  async echo() {
    await t.subscribe(cfg.in, (p) => t.publish(cfg.out, p));
  },

  /** S1/S7: sequential round trips; reports percentiles in microseconds. */
  async pinger() {
    let wake = null;
    await t.subscribe(cfg.out, () => wake());
    ops.set('run', async ({ warmup, count, size }) => {
      const payload = makePayload(size);
      const rtt = new Float64Array(count);
      for (let i = -warmup; i < count; i++) {
        const got = new Promise((r) => (wake = r));
        const t0 = now();
        t.publish(cfg.in, payload);
        await got;
        if (i >= 0) rtt[i] = (now() - t0) / 1000;
      }
      tell({ ev: 'done', result: percentiles(rtt) });
    });
  },

  /** S2/S3/S5/S6: counts what arrives; in latency mode records one-way latency per size and acknowledges. */
  async sink() {
    let count = 0;
    let first = 0;
    let last = 0;
    /** [count, arrival] every MARK messages: S5 measures the rate from a moment inside the burst. */
    let marks = [];
    const lat = new Map();
    await t.subscribe(cfg.channel, (p) => {
      const at = now();
      if (cfg.ack) {
        const b = asBuf(p);
        if (b[8] !== BURST) {
          if (b[8] === 0) {
            let arr = lat.get(b.length);
            if (!arr) lat.set(b.length, (arr = []));
            arr.push((at - b.readDoubleLE(0)) / 1000);
          }
          t.publish(cfg.ack, ACK);
          return;
        }
      }
      if (count === 0) first = at;
      last = at;
      if (count % MARK === 0) marks.push([count, at]);
      count++;
    });
    let cpu0 = process.cpuUsage();
    ops.set('reset', () => {
      cpu0 = process.cpuUsage();
      count = first = last = 0;
      marks = [];
      lat.clear();
      t.stats.lost = 0;
      tell({ ev: 'reset' });
    });
    ops.set('finish', async ({ expected, idleMs }) => {
      let seen = -1;
      while (count < expected && count !== seen) {
        seen = count;
        await new Promise((r) => setTimeout(r, idleMs));
      }
      const latency = Object.fromEntries(lat);
      const cpu = process.cpuUsage(cpu0);
      tell({ ev: 'report', result: { count, first, last, marks, lost: t.stats.lost, latency, cpuUs: cpu.user + cpu.system } });
    });
  },

  /** S2/S3/S5: a burst as fast as flow control allows; S3/S6: sequential sends, each waiting for every ack. */
  async source() {
    let acks = 0;
    let wake = null;
    if (cfg.ack) {
      await t.subscribe(cfg.ack, () => {
        acks++;
        if (wake && acks >= cfg.receivers) wake();
      });
    }
    ops.set('burst', ({ count, size }) => {
      const payload = makePayload(size, BURST);
      let i = 0;
      const cpu0 = process.cpuUsage();
      const start = now();
      const pump = () => {
        while (i < count) {
          i++;
          if (!t.publish(cfg.channel, payload)) return t.onDrain(pump);
        }
        Promise.resolve(t.sync()).then(() => tell({ ev: 'done', result: { start, end: now(), sent: count, shm: t.stats.shm === true, cpuUs: cpuOf(cpu0) } }));
      };
      pump();
    });
    ops.set('latency', async ({ plan, warmup }) => {
      const start = now();
      for (const { size, count } of plan) {
        const payload = makePayload(size);
        for (let i = -warmup; i < count; i++) {
          payload[8] = i < 0 ? 1 : 0;
          acks = 0;
          const got = new Promise((r) => (wake = r));
          payload.writeDoubleLE(now(), 0);
          t.publish(cfg.channel, payload);
          await got;
          wake = null;
        }
      }
      tell({ ev: 'done', result: { start, end: now(), shm: t.stats.shm === true } });
    });
  },

  /** S8: sends `cfg.rate` messages per second to `cfg.channel` (10 ms ticks) from 'start' until 'finish'. */
  async trickle() {
    let sent = 0;
    let timer = null;
    const payload = makePayload(64, BURST);
    ops.set('start', () => {
      const perTick = Math.max(1, Math.round(cfg.rate / 100));
      timer = setInterval(() => {
        for (let i = 0; i < perTick; i++) {
          t.publish(cfg.channel, payload);
          sent++;
        }
      }, 10);
      tell({ ev: 'started' });
    });
    ops.set('finish', async () => {
      clearInterval(timer);
      await t.sync();
      tell({ ev: 'report', result: { sent } });
    });
  },

  /** S7: holds many listener names (patterns for qcop) that the pinged channel mostly does not match. */
  async filler() {
    let count = 0;
    await t.subscribeMany(cfg.names, () => count++);
    ops.set('finish', () => tell({ ev: 'report', result: { count } }));
  },
};

const ACK = Buffer.from('ok');
await roles[cfg.role]();
tell({ ev: 'ready' });
ops.set('link', async () => {
  await t.link();
  tell({ ev: 'linked' });
});
