// Starting a service's program (SPEC §10): as its user when the broker is root, or its systemd unit.
import type * as ChildProcesses from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { accountRecords } from '../../shm/ids.js';
import type { Service } from './services.js';

let childProcess: typeof ChildProcesses | undefined;
/** node:child_process on the first launch: a broker that starts no service never loads it (nor its dgram and net parts). */
const spawnOf = (): typeof ChildProcesses.spawn => (childProcess ??= createRequire(import.meta.url)('node:child_process') as typeof ChildProcesses).spawn;

/** A user's uid, gid and home from /etc/passwd (Node resolves no names); null when unknown. */
export function lookupUser(user: string | number): { uid: number; gid: number; home: string; name: string } | null {
  const f = accountRecords('/etc/passwd').find((r) => r.length >= 7 && (typeof user === 'string' ? r[0] === user : Number(r[2]) === user));
  if (f) return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
  return typeof user === 'number' ? { name: String(user), uid: user, gid: user, home: '/' } : null;
}

/** Starts the program (or `systemctl start UNIT`); throws a text saying why it cannot. */
export function launch(s: Service, socket: string, channel: string): ChildProcess {
  const me = process.geteuid?.() ?? 0;
  const env: Record<string, string> = {
    PATH: process.env.PATH || '/usr/local/bin:/usr/bin:/bin',
    QCOP_SOCKET: socket,
    QCOP_ACTIVATION_CHANNEL: channel,
  };
  for (const k of ['LANG', 'TZ', 'NODE_PATH']) if (process.env[k]) env[k] = process.env[k]!;
  let uid: number | undefined;
  let gid: number | undefined;
  if (s.user !== null && s.unit === null) {
    const u = lookupUser(s.user);
    if (!u) throw new Error(`unknown user ${s.user}`);
    if (u.uid !== me) {
      if (me !== 0) throw new Error(`cannot start it as ${u.name}: the broker does not run as root`);
      uid = u.uid;
      gid = u.gid;
    }
    env.HOME = u.home;
    env.USER = env.LOGNAME = u.name;
  } else if (process.env.HOME) {
    env.HOME = process.env.HOME;
  }
  Object.assign(env, s.env);
  const [cmd, ...args] = s.unit !== null ? ['systemctl', 'start', s.unit] : s.command!;
  return spawnOf()(cmd!, args, {
    cwd: s.cwd ?? '/',
    env,
    stdio: ['ignore', 'inherit', 'pipe'],
    ...(uid !== undefined ? { uid, gid } : {}),
  });
}
