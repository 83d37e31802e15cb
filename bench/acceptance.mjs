#!/usr/bin/env node
// Backpressure acceptance, as a user would run it: qcopd with its defaults, four `qcop listen`
// processes, one program sending COUNT messages as fast as 'drain' allows. Every listener must get
// every message, in order. With --stop, the fourth listener is SIGSTOPped before the burst and
// continued after it: the three others must still get everything, and the stopped one must print
// on stderr how many it lost, received + lost = COUNT.
// Usage: npm run build && node bench/acceptance.mjs [--count N] [--stop]
import { DAEMON_NODE_FLAGS } from '../targets/daemon-flags.mjs';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const COUNT = Number(argv.includes('--count') ? argv[argv.indexOf('--count') + 1] : 1_000_000);
const STOP = argv.includes('--stop');
const CHANNEL = 'accept/seq';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-accept-'));
const socket = path.join(dir, 'qcop.sock');
const children = [];
const cleanup = () => {
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGCONT');
      c.kill('SIGKILL');
    } catch {}
  }
  fs.rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function run(file, args, nodeFlags = []) {
  const c = spawn(process.execPath, [...nodeFlags, path.join(ROOT, file), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  return c;
}

/** A `qcop listen`: counts its JSON lines and checks the numbers only grow by one; collects stderr. */
function listener(i) {
  const c = run('bin/qcop.js', ['listen', CHANNEL, '--socket', socket]);
  const l = { i, child: c, count: 0, inOrder: true, next: 0, stderr: '', lost: 0 };
  readline.createInterface({ input: c.stdout }).on('line', (line) => {
    const n = JSON.parse(line).data;
    if (n < l.next) l.inOrder = false; // gaps are losses (counted apart); going back is disorder
    l.next = n + 1;
    l.count++;
  });
  c.stderr.on('data', (d) => {
    l.stderr += d;
    for (const m of String(d).matchAll(/(\d+) message\(s\) lost/g)) l.lost += Number(m[1]);
  });
  return l;
}

const until = async (what, cond, ms) => {
  for (const end = Date.now() + ms; !(await cond()); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const broker = run('bin/qcopd.js', ['--socket', socket], DAEMON_NODE_FLAGS);
await until('the broker', () => fs.existsSync(socket), 10_000);
const { connect } = await import(path.join(ROOT, 'dist/runtime/index.js'));
const probe = await connect({ socket, name: 'acceptance-probe' });
const listeners = [0, 1, 2, 3].map(listener);
await until('four listeners', async () => (await probe.stats()).queues.connections.filter((c) => c.listeners > 0).length === 4, 10_000);
if (STOP) process.kill(listeners[3].child.pid, 'SIGSTOP');

// The sender: as fast as 'drain' allows, the Node stream convention.
const tx = await connect({ socket, name: 'acceptance-sender' });
const t0 = process.hrtime.bigint();
for (let i = 0; i < COUNT; i++) {
  if (!tx.send(CHANNEL, 'seq(int)', i)) await new Promise((r) => tx.once('drain', r));
}
await tx.flush();
const sendSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
const live = STOP ? listeners.slice(0, 3) : listeners;
await until('every message at the live listeners', () => live.every((l) => l.count >= COUNT), 600_000);
const deliverSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
if (STOP) {
  process.kill(listeners[3].child.pid, 'SIGCONT');
  const s = listeners[3];
  await until('the stopped listener to catch up and be told', () => s.lost > 0 && s.count + s.lost >= COUNT, 120_000).catch(() => {});
}
const stats = await probe.stats();
await Promise.all([tx.close(), probe.close()]);
broker.kill('SIGTERM');

let ok = true;
const line = (l) => `listener ${l.i + 1}${STOP && l.i === 3 ? ' (stopped)' : ''}: received ${l.count}, in order ${l.inOrder}, told lost ${l.lost}`;
for (const l of listeners) {
  const good = STOP && l.i === 3 ? l.lost > 0 && l.count + l.lost === COUNT && l.inOrder : l.count === COUNT && l.inOrder && l.lost === 0;
  ok &&= good;
  console.log(`${good ? 'ok  ' : 'FAIL'} ${line(l)}`);
}
console.log(`${COUNT} messages sent in ${sendSeconds.toFixed(1)} s, all delivered to the live listeners in ${deliverSeconds.toFixed(1)} s (${Math.round(COUNT / deliverSeconds)} msg/s each); broker: ${stats.dropped.slowConsumer} dropped for slow receivers, ${stats.backpressure.stuckReceivers} receivers declared stuck`);
console.log(ok ? 'acceptance: passed' : 'acceptance: FAILED');
process.exit(ok ? 0 : 1);
