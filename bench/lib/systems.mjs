// The systems under test: how each one's broker starts, and how a worker reaches a channel's receivers.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { BENCH, ROOT, nowNs, sockPath, spawnServer, startWorkers, stopGracefully, waitAccepting } from './procs.mjs';

export const QCOPD = path.join(ROOT, 'bin/qcopd.js');
export const RAW_BROKER = path.join(BENCH, 'baseline/raw-broker.mjs');
export const BARE = path.join(BENCH, 'baseline/bare-listener.mjs');
/** Node flags for qcopd only, to measure daemon tuning: QCOP_BENCH_QCOPD_ARGS='--max-semi-space-size=1'. */
export const QCOPD_NODE_ARGS = (process.env.QCOP_BENCH_QCOPD_ARGS ?? '').split(' ').filter(Boolean);

/**
 * `qcop-shm` is the large-message path through shared memory (SPEC §3): `send(Buffer)`, which
 * copies the data once into a pool slot. `qcop-loan` is the same path with `client.loan()`: the
 * producer writes in place into the slot and `send()` writes only a descriptor (no copy). Both run
 * exactly when the shm probe says the runtime's shared-memory path works here.
 */
const shm = { ok: false, why: 'not available yet: not probed' };

/**
 * `qcop-bundle` is what a board runs: qcopd.js of the board bundle for this machine's architecture
 * (`npm run build:target`, docs/TARGETS.md), built into the bench's temp folder by `buildBundle()`.
 */
const BUNDLE_TARGETS = { x64: 'x64', arm64: 'rpi-arm64', arm: 'rpi-armhf' };
const bundle = { qcopd: '', why: 'not built yet' };

export function buildBundle(outDir) {
  const target = BUNDLE_TARGETS[process.arch];
  if (!target) return void (bundle.why = `no board bundle for ${process.arch}`);
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build-target.mjs'), target, '--out', outDir, '--no-tar'], { cwd: ROOT, encoding: 'utf8', timeout: 120000 });
  if (r.status !== 0) return void (bundle.why = `npm run build:target -- ${target} failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  bundle.qcopd = path.join(outDir, target, 'qcopd.js');
  bundle.why = '';
  return bundle.qcopd;
}

/** The node arguments that start a qcop broker of `system` (bin/qcopd.js, or the board bundle's qcopd.js). */
export const qcopdCommand = (system) => [...QCOPD_NODE_ARGS, system === 'qcop-bundle' ? bundle.qcopd : QCOPD];

export const SYSTEMS = {
  qcop: { label: 'qcop', broker: true, available: () => true },
  'qcop-bundle': { label: 'qcop, board bundle', broker: true, available: () => bundle.qcopd !== '', get why() { return bundle.why; } },
  'qcop-shm': { label: 'qcop shm', broker: true, available: () => shm.ok, get why() { return shm.why; } },
  'qcop-loan': { label: 'qcop shm, loan (written in place)', broker: true, available: () => shm.ok, get why() { return shm.why; } },
  'raw-broker': { label: 'raw-broker', broker: true, available: () => true },
  'raw-p2p': { label: 'raw-p2p', broker: false, available: () => true },
};

/**
 * Probes whether the runtime's shared-memory message path works here (bench/worker/shm-probe.mjs
 * against a fresh qcopd); qcop-shm and qcop-loan run only if it does, otherwise it is reported as not available.
 */
export async function probeShm() {
  const broker = await startBroker('qcop');
  try {
    const probe = spawnSync(process.execPath, [path.join(BENCH, 'worker/shm-probe.mjs'), broker.socket], { cwd: ROOT, encoding: 'utf8', timeout: 10000 });
    const r = JSON.parse(probe.stdout.trim().split('\n').pop() || '{}');
    shm.ok = r.active === true;
    shm.why = shm.ok ? '' : `not available yet: ${r.why || probe.stderr.trim().split('\n').pop() || 'the probe printed nothing'}`;
  } catch (err) {
    shm.ok = false;
    shm.why = `not available yet: probe failed (${err.message})`;
  } finally {
    await stopGracefully(broker.child);
  }
  return { ...shm };
}

/** Sets the probe's verdict again (re-rendering a saved run). */
export function restoreShm(state) {
  shm.ok = state.ok === true;
  shm.why = state.why ?? '';
}

/** Starts the broker a system needs (none for raw-p2p); returns { socket, child, readyMs }. */
export async function startBroker(system, { maxQueueBytes } = {}) {
  if (!SYSTEMS[system].broker) return { socket: null, child: null, readyMs: 0 };
  const socket = sockPath(system);
  const args = system === 'raw-broker' ? [RAW_BROKER, socket] : [...qcopdCommand(system), '--socket', socket];
  if (maxQueueBytes && system !== 'raw-broker') args.push('--max-queue-bytes', String(maxQueueBytes));
  const t0 = nowNs();
  const child = spawnServer(args);
  const readyMs = await waitAccepting(socket, t0, child);
  return { socket, child, readyMs };
}

/**
 * Worker configs for one run. `nodes` maps a name to { role, subscribes: [channels], ...extra };
 * for raw-p2p each node gets its own socket and the sockets of every node subscribing to what it
 * publishes (`publishes: [channels]`).
 */
export function workerConfigs(system, socket, nodes) {
  const self = Object.fromEntries(Object.keys(nodes).map((n) => [n, system === 'raw-p2p' ? sockPath(n) : undefined]));
  return Object.entries(nodes).map(([name, n]) => {
    const cfg = { name, system, socket, self: self[name], ...n };
    if (system === 'raw-p2p') {
      cfg.peers = {};
      for (const ch of n.publishes ?? []) {
        cfg.peers[ch] = Object.entries(nodes).filter(([, m]) => (m.subscribes ?? []).includes(ch)).map(([other]) => self[other]);
      }
    }
    delete cfg.subscribes;
    delete cfg.publishes;
    return cfg;
  });
}

/** Clients first (each releases what it holds), then the broker. */
export async function stopAll(workers, broker) {
  await Promise.all(workers.map((w) => w.stop()));
  await stopGracefully(broker?.child);
}

/**
 * One run with fresh processes: the system's broker, then the workers of `nodes`; `body` gets
 * { w: workers by name, broker } and its result is returned. Everything is killed afterwards.
 */
export async function withRun(system, nodes, body, brokerOptions) {
  const broker = await startBroker(system, brokerOptions);
  let workers = [];
  try {
    workers = await startWorkers(workerConfigs(system, broker.socket, nodes));
    const w = Object.fromEntries(workers.map((x) => [x.cfg.name, x]));
    return await body({ w, broker });
  } finally {
    await stopAll(workers, broker);
  }
}
