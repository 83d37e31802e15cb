// The systems under test: how each one's broker starts, and how a worker reaches a channel's receivers.
import { DAEMON_NODE_FLAGS } from '../../targets/daemon-flags.mjs';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BENCH, ROOT, nowNs, sockPath, spawnServer, startWorkers, stopGracefully, tmpDir, waitAccepting } from './procs.mjs';

export const QCOPD = path.join(ROOT, 'bin/qcopd.js');
export const QCOP = path.join(ROOT, 'bin/qcop.js');
export const RAW_BROKER = path.join(BENCH, 'baseline/raw-broker.mjs');
export const BARE = path.join(BENCH, 'baseline/bare-listener.mjs');
/**
 * Node flags for qcopd: those a board's unit gives it (targets/daemon-flags.mjs), or, to measure daemon
 * tuning, QCOP_BENCH_QCOPD_ARGS='--max-semi-space-size=1' instead.
 */
export const QCOPD_NODE_ARGS = process.env.QCOP_BENCH_QCOPD_ARGS !== undefined ? process.env.QCOP_BENCH_QCOPD_ARGS.split(' ').filter(Boolean) : DAEMON_NODE_FLAGS;

/**
 * `qcop-shm` is the large-message path through shared memory (SPEC §3): `send(Buffer, { transfer:
 * true })`, which copies the data once into a pool slot. `qcop-loan` is the same path with `client.loan()`: the
 * producer writes in place into the slot and `send()` writes only a descriptor (no copy). Both run
 * exactly when the shm probe says the runtime's shared-memory path works here.
 */
const shm = { ok: false, why: 'not available yet: not probed' };

/**
 * `qcop-bundle` is what a board runs: qcopd.js of the board bundle for this machine's architecture
 * (`npm run build:target`, docs/TARGETS.md), built into the bench's temp folder by `buildBundle()`.
 */
export const BUNDLE_TARGETS = { x64: 'x64', arm64: 'rpi-arm64', arm: 'rpi-armhf' };
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

/**
 * `qcop-acl` is `qcop` with a policy (docs/ACL.md) that applies to its clients: qcopd (root) gets
 * `--acl-dir` with ACL_RULES rules, the one granting the bench's channels last, and `--group` of the
 * clients' user; the workers run as the unprivileged user `nobody` (root and the broker's own user
 * skip the policy, so clients running as root would measure nothing). `prepareAcl()` writes the
 * policy and probes (bench/worker/acl-probe.mjs, as that user) that the policy is enforced.
 */
export const ACL_USER = 'nobody';
export const ACL_RULES = 20;
const acl = { ok: false, why: 'not available: not prepared', user: null, dir: '', sockDir: '' };

/** { name, uid, gid, group } of `name` from /etc/passwd and /etc/group, or null. */
function account(name) {
  const fields = (file) => {
    try {
      return fs.readFileSync(file, 'utf8').split('\n').map((l) => l.split(':'));
    } catch {
      return [];
    }
  };
  const u = fields('/etc/passwd').find((f) => f[0] === name && f.length >= 4);
  if (!u) return null;
  const uid = Number(u[2]);
  const gid = Number(u[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return null;
  const g = fields('/etc/group').find((f) => f.length >= 3 && Number(f[2]) === gid);
  return { name, uid, gid, group: g ? g[0] : String(gid) };
}

/**
 * The policy of qcop-acl, ACL_RULES rules in three files as a board would have them: 19 that do not
 * grant the bench user its channels (other users and groups, or the bench user's own group and
 * every user on other channels; some near misses on `bench/...`), then, last of the last file, the
 * rule that does. Decisions are cached, so the walk over the rules is paid once per (user, action,
 * channel); what every message pays is the cached lookup. Other users are uids and gids (they need
 * not exist), except `daemon`, so the files load on any usual Linux.
 */
export function aclPolicy(user) {
  const files = {
    '10-system.json': [
      { user: 'daemon', send: ['QPE/System', 'QPE/Broadcast/*'], listen: ['QPE/System'], watch: ['*'] },
      { user: '1001', send: ['cam/*'], listen: ['QPE/Camera'], watch: ['cam/*'], comment: 'camera daemon' },
      { user: '1002', send: ['audio/*', 'QPE/AudioVolume'], listen: ['QPE/AudioVolume', 'audio/ctl'], comment: 'audio daemon' },
      { user: '1003', send: ['net/*'], listen: ['QPE/Network', 'net/ctl/*'], comment: 'network daemon' },
      { user: '1004', send: ['power/*', 'QPE/Broadcast/lowBattery'], listen: ['QPE/Power'], comment: 'power daemon' },
      { user: '*', listen: ['QPE/Broadcast/*'], watch: ['QPE/Application/*'] },
      { group: user.group, send: ['apps/shared/log'], listen: ['apps/shared/*'] },
    ],
    '30-apps.json': [
      { user: '1010', send: ['QPE/System', 'QPE/Camera', 'QPE/Application/*'], listen: ['QPE/Application/ui', 'ui/*', 'cam/*'], watch: ['*'], monitor: ['ui/*'], comment: 'launcher UI' },
      { group: '2000', send: ['QPE/Camera', 'apps/*'], listen: ['cam/preview/*', 'apps/*'], watch: ['apps/*'], comment: 'every app' },
      { user: '1011', send: ['apps/weather/*'], listen: ['apps/weather/*', 'QPE/Application/weather'] },
      { user: '1012', send: ['apps/mail/*'], listen: ['apps/mail/*', 'QPE/Application/mail'] },
      { user: '1013', send: ['apps/player/*', 'audio/stream'], listen: ['apps/player/*', 'QPE/Application/player'] },
      { user: '1014', send: ['apps/clock/*'], listen: ['QPE/Application/clock', 'QPE/Alarm'] },
      { group: '2001', send: ['sensors/*'], listen: ['sensors/ctl'], watch: ['sensors/*'], comment: 'sensor daemons' },
      { user: '1015', send: ['apps/logger/*'], listen: ['sensors/*'] },
    ],
    '90-bench.json': [
      { user: '1020', send: ['bench/other'], listen: ['bench/other/*'] },
      { group: '2002', send: ['bench/*'], listen: ['bench/*'], watch: ['bench/*'] },
      { user: '1021', monitor: ['*'] },
      { user: '*', send: ['log/*'] },
      { user: user.name, send: ['bench/*'], listen: ['bench/ping', 'bench/pong', 'bench/fan'], watch: ['bench/*'], comment: 'the bench clients: last, so finding it walks every rule before it' },
    ],
  };
  return Object.fromEntries(Object.entries(files).map(([name, rules]) => [name, { comment: 'qcop bench (qcop-acl)', rules }]));
}

/**
 * Sets qcop-acl up, or says why it is not available: the bench must be root (to start its clients
 * as ACL_USER), ACL_USER must exist, the policy is written into the temp folder, the temp folder
 * made traversable (0711) so that user reaches the socket folder (qcopd gives it to the user's
 * group, 0750), and a probe run as that user must find the policy enforced.
 */
export async function prepareAcl() {
  const euid = process.geteuid?.();
  if (euid !== 0) {
    acl.ok = false;
    acl.why = `not available: the bench runs as uid ${euid ?? '?'}, not root; root and the broker's own user skip the policy, so its clients must run as another user (${ACL_USER}), which only root can start`;
    return { ...acl };
  }
  const user = account(ACL_USER);
  if (!user) {
    acl.ok = false;
    acl.why = `not available: no user ${ACL_USER} in /etc/passwd to run the clients as`;
    return { ...acl };
  }
  acl.user = user;
  acl.dir = path.join(tmpDir(), 'acl.d');
  acl.sockDir = path.join(tmpDir(), 'acl');
  let broker = null;
  try {
    fs.mkdirSync(acl.dir, { recursive: true, mode: 0o755 });
    for (const [name, body] of Object.entries(aclPolicy(user))) fs.writeFileSync(path.join(acl.dir, name), JSON.stringify(body, null, 1) + '\n', { mode: 0o644 });
    fs.chmodSync(tmpDir(), 0o711);
    acl.ok = true; // for startBroker; the probe decides
    broker = await startBroker('qcop-acl');
    const probe = spawnSync(process.execPath, [path.join(BENCH, 'worker/acl-probe.mjs'), broker.socket, String(user.uid)], { cwd: ROOT, encoding: 'utf8', timeout: 10000, uid: user.uid, gid: user.gid });
    if (probe.error) throw probe.error;
    const r = JSON.parse(probe.stdout.trim().split('\n').pop() || '{}');
    acl.ok = r.enforced === true;
    acl.why = acl.ok ? '' : `not available: ${r.why || probe.stderr.trim().split('\n').pop() || `the probe run as ${user.name} printed nothing`}`;
  } catch (err) {
    acl.ok = false;
    acl.why = `not available: probe failed (${err.message})`;
  } finally {
    await stopGracefully(broker?.child);
  }
  return { ...acl };
}

/** Sets the verdict of prepareAcl again (re-rendering a saved run). */
export function restoreAcl(state) {
  acl.ok = state.ok === true;
  acl.why = state.why ?? '';
  acl.user = state.user ?? null;
}

/** Who qcop-acl's clients run as, for captions: "nobody (uid 65534, gid 65534 nogroup)". */
export function aclUser() {
  const u = acl.user;
  return u ? `${u.name} (uid ${u.uid}, gid ${u.gid} ${u.group})` : ACL_USER;
}

/** The node arguments that start a qcop broker of `system` (bin/qcopd.js, or the board bundle's qcopd.js). */
export const qcopdCommand = (system) => [...QCOPD_NODE_ARGS, system === 'qcop-bundle' ? bundle.qcopd : QCOPD];

export const SYSTEMS = {
  qcop: { label: 'qcop', broker: true, available: () => true },
  'qcop-acl': { label: `qcop, ${ACL_RULES}-rule policy, unprivileged clients`, broker: true, available: () => acl.ok, get why() { return acl.why; } },
  'qcop-top': { label: 'qcop, with `qcop top` running', broker: true, available: () => true },
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
export async function startBroker(system, { maxQueueBytes, config } = {}) {
  if (!SYSTEMS[system].broker) return { socket: null, child: null, readyMs: 0 };
  // qcop-acl's sockets live in their own folder, which qcopd gives to the clients' group (0750).
  const socket = system === 'qcop-acl' ? path.join(acl.sockDir, path.basename(sockPath(system))) : sockPath(system);
  const args = system === 'raw-broker' ? [RAW_BROKER, socket] : [...qcopdCommand(system), '--socket', socket];
  if (system === 'qcop-acl') args.push('--acl-dir', acl.dir, '--group', acl.user.group);
  if (maxQueueBytes && system !== 'raw-broker') args.push('--max-queue-bytes', String(maxQueueBytes));
  // S8: a config file (queued channels, stateDir, durability), each run in a fresh folder.
  if (config && system !== 'raw-broker') {
    const dir = fs.mkdtempSync(path.join(tmpDir(), 'cfg-'));
    const file = path.join(dir, 'qcopd.json');
    fs.writeFileSync(file, JSON.stringify({ stateDir: path.join(dir, 'state'), ...config }));
    args.push('--config', file);
  }
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
  let top = null;
  try {
    // qcop-acl: the clients run as the unprivileged user, so the policy applies to them.
    workers = await startWorkers(workerConfigs(system, broker.socket, nodes), system === 'qcop-acl' ? { uid: acl.user.uid, gid: acl.user.gid } : {});
    const w = Object.fromEntries(workers.map((x) => [x.cfg.name, x]));
    // qcop-top: `qcop top` asks for the per-channel figures every second, so the broker keeps them (SPEC §12).
    if (system === 'qcop-top') top = spawnServer([QCOP, 'top', '--socket', broker.socket, '--interval', '1']);
    return await body({ w, broker });
  } finally {
    top?.kill('SIGKILL');
    await stopAll(workers, broker);
  }
}
