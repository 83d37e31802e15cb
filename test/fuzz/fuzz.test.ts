// Fuzz: a live broker fed random and mutated frames over many raw connections while a sentinel pair keeps talking.
// QCOP_FUZZ_FRAMES sets the number of frames (default 100000), QCOP_FUZZ_SEED replays a run.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, startBroker, type Client } from '../../runtime/index.js';
import type { BrokerCore } from '../../runtime/broker/broker.js';
import type { Frame } from '../../runtime/protocol/frame.js';
import { isPattern } from '../../runtime/protocol/names.js';
import { work } from '../../runtime/protocol/pattern.js';
import { FrameParser } from '../../runtime/protocol/parser.js';
import { expectation, session, type Expectation } from './gen.js';
import { judge, sessionRng } from './play.js';
import { K, RawConn } from './raw.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CRASH_DIR = path.join(HERE, 'crashes');
const TOTAL = Number(process.env.QCOP_FUZZ_FRAMES || 100_000);
const SEED = Number(process.env.QCOP_FUZZ_SEED || (Date.now() ^ (process.pid << 8)) >>> 0) >>> 0;
const CONCURRENCY = Number(process.env.QCOP_FUZZ_CONCURRENCY || 24);
const ANSWER_MS = 3000; // longer than the broker's 2 s handshake timeout
// The whole process (broker and fuzzer) may grow this much in a default run; a long run
// (QCOP_FUZZ_FRAMES above 200000) must instead stop growing: its second half may not add more
// than RSS_PLATEAU_LIMIT to the first half's peak.
const RSS_GROWTH_LIMIT = 200 << 20;
const RSS_PLATEAU_LIMIT = 64 << 20;
const HEAP_GROWTH_LIMIT = 64 << 20; // live objects left behind once every raw connection closed

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function settledMemory(): { rss: number; heap: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.arrayBuffers };
}

console.log(`fuzz: seed ${SEED} (replay with QCOP_FUZZ_SEED=${SEED}), ${TOTAL} frames, ${CONCURRENCY} connections at a time`);

interface Tracked {
  index: number;
  label: string;
  bytes: Buffer;
  serverBytes: number;
}

interface Crash {
  error: Error;
  conn: Tracked | null;
  frame: Buffer | null;
  file?: string;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-fuzz-'));
const socketPath = path.join(dir, 'qcop.sock');
let broker: BrokerCore; // the core: the fuzzer instruments its entry points
let sender: Client;
let receiver: Client;
const crashes: Crash[] = [];
const problems: Array<{ index: number; text: string }> = [];
const outcomes: Record<string, number> = {};
let framesSent = 0;
let framesDispatched = 0;
let connections = 0;
let current: Tracked | null = null;
let currentFrame: Buffer | null = null;
let before = { rss: 0, heap: 0 };
let rssPeak = 0;
let rssPeakFirstHalf = 0;
let peakDetail = '';
// Per-send matching cost (SPEC §8), counted in steps: the largest seen, and sends over their bound.
let routeMaxSteps = 0;
let routesCounted = 0;
const routesOverBudget: string[] = [];

// Sentinel traffic: numbered messages from `sender` to `receiver` during the whole run.
let sentinelSent = 0;
const sentinelGot: number[] = [];
let sentinelForeign = 0;
let sentinelTimer: NodeJS.Timeout | null = null;

function onUncaught(error: Error): void {
  crashes.push({ error, conn: current, frame: currentFrame ? Buffer.from(currentFrame) : null });
}

/** What kind of crash this is: the error without the input it quotes, and the function that threw. */
function crashKind(e: Error): string {
  const line = (e.stack ?? '').split('\n').find((l) => l.includes('/runtime/')) ?? '';
  const where = /at (?:new )?(\S+) \(/.exec(line)?.[1] ?? '?';
  return `${e.name}: ${e.message.replace(/\/.*\/[a-z]*:/, '/…/:')} in ${where}`;
}

/** The smallest input of a crash: the connection's hello plus the frame being handled, else its bytes up to the failing chunk. */
function crashInput(c: Crash): Buffer | null {
  if (!c.conn) return null;
  if (!c.frame) return c.conn.bytes.subarray(0, c.conn.serverBytes);
  let hello: Buffer | null = null;
  new FrameParser(1 << 30).push(c.conn.bytes, (f: Frame) => {
    if (!hello) hello = Buffer.from(f.raw);
  });
  const first = hello as Buffer | null;
  return first && first[4] === K.Hello && !first.equals(c.frame) ? Buffer.concat([first, c.frame]) : c.frame;
}

/** Saves one input per kind of crash (the smallest) under test/fuzz/crashes, named after the kind: a known crash is not saved twice. */
function saveCrashes(): void {
  const smallest = new Map<string, { crash: Crash; input: Buffer }>();
  for (const crash of crashes) {
    const input = crashInput(crash);
    const kind = crashKind(crash.error);
    const best = smallest.get(kind);
    if (input && (!best || input.length < best.input.length)) smallest.set(kind, { crash, input });
  }
  for (const { crash, input } of smallest.values()) {
    const hash = createHash('sha1').update(crashKind(crash.error)).digest('hex').slice(0, 12);
    fs.mkdirSync(CRASH_DIR, { recursive: true });
    const file = path.join(CRASH_DIR, `crash-${hash}.bin`);
    if (!fs.existsSync(file)) fs.writeFileSync(file, input);
    crash.file = path.relative(process.cwd(), file);
  }
}

/** Wraps the broker's public entry points to learn which raw connection and frame it is handling. */
function instrument(b: BrokerCore): { nextAccepted: () => Promise<Duplex> } {
  const waiting: Array<(s: Duplex) => void> = [];
  const accept = b.accept.bind(b);
  b.accept = (stream: Duplex, transport: string) => {
    const conn = accept(stream, transport);
    waiting.shift()?.(stream);
    return conn;
  };
  const onFrame = b.onFrame.bind(b);
  b.onFrame = (conn, frame) => {
    framesDispatched++;
    currentFrame = frame.raw;
    onFrame(conn, frame);
    currentFrame = null;
  };
  // The per-send budget: routing a channel may cost at most one match of every registered pattern,
  // each at most (len(pattern) + 1) × (len(channel) + 1) steps, plus the prefix-bucket lookups.
  const route = b.registry.route.bind(b.registry);
  b.registry.route = (channel: string) => {
    const before = work.steps;
    const receivers = route(channel);
    const cost = work.steps - before;
    routesCounted++;
    if (cost > routeMaxSteps) routeMaxSteps = cost;
    if (cost > 1000) {
      const n = Array.from(channel).length + 1;
      let bound = 17;
      for (const name of b.registry.names()) if (isPattern(name)) bound += (Array.from(name).length + 1) * n;
      if (cost > bound && routesOverBudget.length < 10) routesOverBudget.push(`'${channel.slice(0, 40)}…': ${cost} steps, budget ${bound} (seed ${SEED})`);
    }
    return receivers;
  };
  return { nextAccepted: () => new Promise((resolve) => waiting.push(resolve)) };
}

async function runConnection(index: number, budget: number, nextAccepted: () => Promise<Duplex>): Promise<number> {
  const rng = sessionRng(SEED, index);
  const s = session(rng, index, budget);
  const expected: Expectation = expectation(s.bytes, broker.options.maxFrameBytes);
  const tracked: Tracked = { index, label: s.label, bytes: s.bytes, serverBytes: 0 };
  const accepted = nextAccepted();
  const raw = await RawConn.open(socketPath);
  const serverSide = await accepted;
  serverSide.prependListener('data', (chunk: Buffer) => {
    current = tracked;
    tracked.serverBytes += chunk.length;
  });
  serverSide.on('data', () => (current = null));
  connections++;

  const chunk = s.drip ? () => 1 + rng.int(8) : () => 1 + rng.int(s.bytes.length);
  await raw.write(s.bytes, chunk, s.drip);

  const where = `connection ${index} (${s.label}, expected ${expected}, seed ${SEED})`;
  const judged = await judge(raw, expected, where, ANSWER_MS);
  const outcome = judged.outcome;
  outcomes[`${s.label}/${outcome}`] = (outcomes[`${s.label}/${outcome}`] ?? 0) + 1;
  for (const text of judged.problems) problems.push({ index, text });
  const m = process.memoryUsage();
  if (framesSent < TOTAL / 2) rssPeakFirstHalf = Math.max(rssPeakFirstHalf, m.rss);
  if (m.rss > rssPeak) {
    rssPeak = m.rss;
    peakDetail = `heapTotal ${m.heapTotal >> 20}, heapUsed ${m.heapUsed >> 20}, arrayBuffers ${m.arrayBuffers >> 20} MiB`;
  }
  return s.frames;
}


test.before(async () => {
  process.on('uncaughtException', onUncaught);
  broker = (await startBroker({ socket: socketPath, logLevel: 'error' })) as BrokerCore;
  receiver = await connect({ socket: socketPath, name: 'sentinel-rx', reconnect: false });
  sender = await connect({ socket: socketPath, name: 'sentinel-tx', reconnect: false });
  const l = receiver.listen('sentinel/x', (msg) => {
    if (msg.message === 'seq(int)' && typeof msg.data === 'number') sentinelGot.push(msg.data);
    else sentinelForeign++;
  });
  await l.ready;
  for (const c of [sender, receiver]) c.on('error', (e) => problems.push({ index: -1, text: `sentinel client error: ${e.message}` }));
  sentinelTimer = setInterval(() => {
    for (let i = 0; i < 3; i++) sender.send('sentinel/x', 'seq(int)', sentinelSent++);
  }, 2);
  await new Promise((r) => setTimeout(r, 50));
  before = settledMemory();
});

test.after(async () => {
  if (sentinelTimer) clearInterval(sentinelTimer);
  await sender?.close();
  await receiver?.close();
  await broker?.close();
  process.off('uncaughtException', onUncaught);
  fs.rmSync(dir, { recursive: true, force: true });
});

test(`the broker survives ${TOTAL} random and mutated frames`, async () => {
  const started = Date.now();
  const { nextAccepted } = instrument(broker);
  let index = 0;
  const worker = async () => {
    while (framesSent < TOTAL) {
      const i = index++;
      const n = await runConnection(i, TOTAL - framesSent, nextAccepted);
      framesSent += n;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  saveCrashes();
  console.log(
    `fuzz: ${framesSent} frames over ${connections} connections in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      `broker dispatched ${framesDispatched} frames; outcomes ${JSON.stringify(outcomes)}; rss ${before.rss >> 20} -> peak ${rssPeak >> 20} MiB`,
  );
  assert.ok(framesSent >= TOTAL);
  // The fuzzer's own health: most frames must get past the framing and reach a handler.
  assert.ok(framesDispatched >= TOTAL / 2, `only ${framesDispatched} frames reached the handlers`);
});

test('the broker never threw (crash inputs are saved under test/fuzz/crashes)', () => {
  const seen = new Set<string>();
  const lines = crashes
    .filter((c) => c.file && !seen.has(c.file) && seen.add(c.file))
    .map((c) => `${crashKind(c.error)} (connection ${c.conn?.index ?? '?'}, input saved as ${c.file})\n${c.error.stack?.split('\n').slice(1, 5).join('\n')}`);
  assert.is(crashes.length, 0, `${crashes.length} uncaught exception(s):\n${lines.join('\n')}`);
});

test('every send was routed within its matching budget, counted in steps', () => {
  console.log(`fuzz: ${routesCounted} routes, the costliest ${routeMaxSteps} steps`);
  assert.ok(routesCounted > 0);
  assert.equal(routesOverBudget, []);
});

test('every raw connection was answered or closed after a stream error', () => {
  // A connection whose frame crashed a handler lost the rest of its chunk: the crash test reports it.
  const crashed = new Set(crashes.map((c) => c.conn?.index));
  const own = problems.filter((p) => !crashed.has(p.index)).map((p) => p.text);
  assert.equal(own.slice(0, 10), [], `${own.length} problem(s)`);
});

test('after the raw connections closed, only the sentinels remain and nothing is pending', async () => {
  const deadline = Date.now() + 5000;
  let stats = broker.stats() as { clients: number; channels: number; calls: { pending: number }; queues: { totalBytes: number } };
  while (stats.clients !== 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    stats = broker.stats() as typeof stats;
  }
  assert.is(stats.clients, 2);
  assert.is(stats.channels, 1, 'only sentinel/x stays registered');
  assert.is(stats.calls.pending, 0);
  assert.ok(stats.queues.totalBytes < 1 << 20, `${stats.queues.totalBytes} bytes still queued`);
});

test('broker memory stayed bounded during the run and nothing was left behind', () => {
  const after = settledMemory();
  console.log(`fuzz: rss ${before.rss >> 20} MiB before, peak ${rssPeak >> 20} (${peakDetail}), after ${after.rss >> 20}; live heap ${before.heap >> 20} -> ${after.heap >> 20} MiB`);
  if (TOTAL <= 200_000) {
    assert.ok(rssPeak - before.rss < RSS_GROWTH_LIMIT, `rss grew by ${(rssPeak - before.rss) >> 20} MiB during the run`);
  } else {
    const late = rssPeak - rssPeakFirstHalf;
    assert.ok(late < RSS_PLATEAU_LIMIT, `rss still grew by ${late >> 20} MiB in the second half of the run (first-half peak ${rssPeakFirstHalf >> 20} MiB)`);
  }
  assert.ok(after.heap - before.heap < HEAP_GROWTH_LIMIT, `${(after.heap - before.heap) >> 20} MiB of live heap left behind`);
});

test('a fresh client is served', async () => {
  const c = await connect({ socket: socketPath, name: 'fresh', reconnect: false });
  try {
    const l = c.listen('fresh/x', (msg) => msg.reply?.({ pong: msg.data }));
    await l.ready;
    assert.is(await c.deliver('fresh/x', 'ping()', 1), 1);
    assert.is(await c.isRegistered('fresh/x'), true);
    assert.equal(await c.call('fresh/x', 'ping()', 2, { timeoutMs: 2000 }), { pong: 2 });
  } finally {
    await c.close();
  }
});

test('the sentinel received every message, in order', async () => {
  if (sentinelTimer) clearInterval(sentinelTimer);
  sentinelTimer = null;
  const { messages, unrouted } = await sender.flush();
  // A round trip on the receiver's own connection: every message routed before it has arrived.
  await receiver.stats();
  assert.is(messages, sentinelSent);
  assert.is(unrouted, 0);
  assert.is(sentinelGot.length, sentinelSent, `received ${sentinelGot.length} of ${sentinelSent}`);
  assert.ok(sentinelGot.every((n, i) => n === i), 'out of order');
  assert.is(sentinelForeign, 0);
});

test.run();
