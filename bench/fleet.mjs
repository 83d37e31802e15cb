#!/usr/bin/env node
// `npm run fleet -- --boards N [--seconds S] [--rate R]`: N qcop brokers bridged through one mosquitto (docs/FLEET.md).
// Each board: a qcopd with the MQTT bridge, a command listener, a telemetry sender, a local telemetry
// consumer. A back end (MQTT.js, in this process) subscribes to fleet/+/telemetry/# and publishes
// commands to every fleet/<board>/cmd, then broadcasts on fleet/all/cmd (the boards' --mqtt-group). Prints latency p50/p99, messages per second and each process's RSS.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { connect } = await import(path.join(ROOT, 'dist/runtime/index.js'));
const mqtt = (await import('mqtt')).default;

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}
const BOARDS = arg('boards', 20);
const SECONDS = arg('seconds', 5); // steady telemetry phase
const RATE = arg('rate', 20); // telemetry messages per board per second in the steady phase
const COMMANDS = arg('commands', 20); // command rounds (one publish per board each)
const BURST = arg('burst', 500); // telemetry messages per board in the throughput phase

const children = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-fleet-'));
function cleanupSync() {
  for (const c of children) if (c.exitCode === null) try { c.kill('SIGKILL'); } catch {}
  fs.rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanupSync);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`fleet: timed out waiting for ${what}`);
    await sleep(20);
  }
}
const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const answers = (opts) => new Promise((resolve) => {
  const s = net.createConnection(opts);
  s.once('connect', () => { s.destroy(); resolve(true); });
  s.once('error', () => resolve(false));
});
function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch { return NaN; }
}
function pct(values, p) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

// ---- mosquitto
const mosq = spawnSync('sh', ['-c', 'command -v mosquitto || ls /usr/sbin/mosquitto']).stdout.toString().trim().split('\n')[0];
if (!mosq) {
  console.error('fleet: mosquitto is missing: install it with `apt-get install -y mosquitto mosquitto-clients` (scripts/setup-system.sh does)');
  process.exit(1);
}
const port = await freePort();
fs.writeFileSync(path.join(dir, 'mosquitto.conf'), [...(process.getuid() === 0 ? ['user root'] : []), `listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 100000', 'log_dest stderr', 'log_type error', ''].join('\n'));
const broker = spawn(mosq, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
children.push(broker);
await waitFor(() => answers({ host: '127.0.0.1', port }), 10000, 'mosquitto');
const url = `mqtt://127.0.0.1:${port}`;

// ---- N boards, and one qcopd without the bridge for the RSS comparison
function qcopd(name, extra) {
  const socket = path.join(dir, `${name}.sock`);
  const p = spawn(process.execPath, [path.join(ROOT, 'bin/qcopd.js'), '--socket', socket, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr.on('data', (d) => { if (!/listening on/.test(d)) process.stderr.write(`[${name}] ${d}`); });
  children.push(p);
  return { name, socket, proc: p };
}
const t0 = performance.now();
const boards = [];
for (let i = 0; i < BOARDS; i++) {
  boards.push(qcopd(`b${i}`, ['--mqtt', url, '--mqtt-prefix', `fleet/b${i}/`, '--mqtt-client-id', `qcop-fleet-b${i}`, '--mqtt-export', 'telemetry/*', '--mqtt-import', 'cmd', '--mqtt-group', 'fleet/all/']));
}
const plain = qcopd('plain', []);
for (const b of [...boards, plain]) await waitFor(() => answers(b.socket), 20000, `${b.name}'s socket`);

// ---- local clients: cmd listener, telemetry sender, local telemetry consumer
const cmdLatency = [];
const groupLatency = [];
let inGroupPhase = false;
const telLatency = [];
let cmdsSeen = 0;
for (const b of boards) {
  const listener = await connect({ socket: b.socket, name: 'cmd-listener' });
  const sender = await connect({ socket: b.socket, name: 'telemetry' });
  const local = await connect({ socket: b.socket, name: 'local-consumer' });
  await listener.listen('cmd', (m) => { cmdsSeen++; (inGroupPhase ? groupLatency : cmdLatency).push(performance.now() - m.data.ts); }).ready;
  await local.listen('telemetry/*', () => {}).ready;
  Object.assign(b, { listener, sender, local });
}
await waitFor(async () => {
  for (const b of boards) if ((await b.sender.stats()).carriers?.mqtt?.state !== 'up') return false;
  return true;
}, 30000, 'every bridge connected');
const startupMs = performance.now() - t0;

// ---- the back end
const backend = mqtt.connect(url, { clientId: 'fleet-backend', protocolVersion: 5 });
await new Promise((resolve, reject) => { backend.once('connect', resolve); backend.once('error', reject); });
let telSeen = 0;
let measuring = true;
backend.on('message', (topic, payload) => {
  telSeen++;
  if (!measuring) return;
  const v = JSON.parse(payload.toString());
  telLatency.push(performance.now() - v.ts);
});
await new Promise((resolve) => backend.subscribe('fleet/+/telemetry/#', { qos: 0 }, resolve));
await sleep(300);

// Phase 1: steady telemetry (RATE per board per second) while commands go out to every board.
const sendTelemetry = (b, seq) => b.sender.send('telemetry/t', 'temp(map)', { ts: performance.now(), seq, t: 20 + (seq % 10) / 10 });
let seq = 0;
const tick = setInterval(() => { for (const b of boards) sendTelemetry(b, seq); seq++; }, 1000 / RATE);
const cmdEvery = (SECONDS * 1000) / COMMANDS;
for (let r = 0; r < COMMANDS; r++) {
  for (let i = 0; i < BOARDS; i++) backend.publish(`fleet/b${i}/cmd`, JSON.stringify({ ts: performance.now(), led: r % 2 === 0 }), { qos: 1 });
  await sleep(cmdEvery);
}
clearInterval(tick);
const steadySent = seq * BOARDS;
await waitFor(() => telSeen >= steadySent && cmdsSeen >= COMMANDS * BOARDS, 30000, `steady phase (telemetry ${telSeen}/${steadySent}, commands ${cmdsSeen}/${COMMANDS * BOARDS})`).catch((e) => console.error(e.message));
const rssSteady = { boards: boards.map((b) => rssMiB(b.proc.pid)), plain: rssMiB(plain.proc.pid), mosquitto: rssMiB(broker.pid), sim: process.memoryUsage().rss / 1048576 };

// Phase 1b: broadcast — one QoS 1 publish on fleet/all/cmd (the boards' --mqtt-group) reaches every board.
inGroupPhase = true;
const groupBefore = cmdsSeen;
for (let r = 0; r < COMMANDS; r++) {
  backend.publish('fleet/all/cmd', JSON.stringify({ ts: performance.now(), all: r }), { qos: 1 });
  await sleep(cmdEvery);
}
await waitFor(() => cmdsSeen - groupBefore >= COMMANDS * BOARDS, 30000, `broadcast phase (${cmdsSeen - groupBefore}/${COMMANDS * BOARDS})`).catch((e) => console.error(e.message));
const groupSeen = cmdsSeen - groupBefore;
inGroupPhase = false;

// Phase 2: throughput — every board sends BURST telemetry messages as fast as its broker takes them.
measuring = false;
const before = telSeen;
const burstStart = performance.now();
await Promise.all(boards.map(async (b) => {
  for (let k = 0; k < BURST; k++) {
    if (!b.sender.send('telemetry/t', 'temp(map)', { ts: 0, seq: k, t: 21 })) await new Promise((r) => b.sender.once('drain', r));
  }
}));
const burstTotal = BURST * BOARDS;
await waitFor(() => telSeen - before >= burstTotal, 60000, `burst (${telSeen - before}/${burstTotal})`).catch((e) => console.error(e.message));
const burstMs = performance.now() - burstStart;
const burstGot = telSeen - before;
const bridgeStats = await Promise.all(boards.map(async (b) => (await b.sender.stats()).carriers.mqtt));
const dropped = bridgeStats.reduce((n, s) => n + s.dropped, 0);

// ---- report
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const avg = (a) => a.reduce((s, x) => s + x, 0) / a.length;
console.log(`\nqcop fleet simulation: ${BOARDS} boards (3 local clients each) bridged through one mosquitto on loopback; ${os.cpus().length} CPUs, Node ${process.version}`);
console.log(`start-up: ${BOARDS} brokers spawned and bridged in ${f(startupMs / 1000, 2)} s\n`);
console.log('| measure | value |');
console.log('|---|---|');
console.log(`| command latency (back end → fleet/<b>/cmd → board listener), p50 / p99 | ${f(pct(cmdLatency, 50))} / ${f(pct(cmdLatency, 99))} ms (${cmdsSeen - groupSeen} of ${COMMANDS * BOARDS} delivered) |`);
console.log(`| broadcast latency (one publish on fleet/all/cmd → every board listener), p50 / p99 | ${f(pct(groupLatency, 50))} / ${f(pct(groupLatency, 99))} ms (${groupSeen} of ${COMMANDS * BOARDS} delivered) |`);
console.log(`| telemetry latency (board sender → back-end subscriber) at ${RATE} msg/s per board, p50 / p99 | ${f(pct(telLatency, 50))} / ${f(pct(telLatency, 99))} ms (${telLatency.length} of ${steadySent}) |`);
console.log(`| telemetry throughput, ${BURST} messages per board as fast as accepted | ${f(burstGot / (burstMs / 1000), 0)} msg/s at the back end (${burstGot} of ${burstTotal} in ${f(burstMs / 1000, 2)} s; bridges dropped ${dropped}) |`);
console.log(`| RSS of a board's qcopd with the bridge, mean / max | ${f(avg(rssSteady.boards))} / ${f(Math.max(...rssSteady.boards))} MiB |`);
console.log(`| RSS of a qcopd without the bridge (control) | ${f(rssSteady.plain)} MiB |`);
console.log(`| RSS of mosquitto | ${f(rssSteady.mosquitto)} MiB |`);
console.log(`| RSS of this simulation (all local clients and the back end) | ${f(rssSteady.sim)} MiB |`);

backend.end(true);
for (const b of boards) await Promise.all([b.listener.close(), b.sender.close(), b.local.close()]);
for (const c of children) c.kill('SIGTERM');
await sleep(300);
process.exit(cmdsSeen - groupSeen >= COMMANDS * BOARDS && groupSeen >= COMMANDS * BOARDS && burstGot >= burstTotal ? 0 : 1);
