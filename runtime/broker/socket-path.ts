// Where the broker's socket lives (SPEC §6) and taking that place safely: folder mode, live or stale socket.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { QcopError } from '../protocol/errors.js';

/** The default socket path: $QCOP_SOCKET, $XDG_RUNTIME_DIR/qcop, /run/qcop for root, /tmp/qcop-<uid>. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.QCOP_SOCKET) return env.QCOP_SOCKET;
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'qcop', 'qcop.sock');
  const uid = os.userInfo().uid;
  if (uid === 0) return '/run/qcop/qcop.sock';
  return `/tmp/qcop-${uid}/qcop.sock`;
}

/** Resolves a group name or gid to a gid, reading /etc/group for names. */
export function resolveGroup(group: string | number): number {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = fs.readFileSync('/etc/group', 'utf8');
  } catch {
    // fall through to the error below
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid) return Number(gid);
  }
  throw new QcopError('EINVAL', `group '${group}' does not exist`);
}

/**
 * Makes the socket folder (0700, or 0750 with a group) and clears the way: refuses with
 * EADDRINUSE when a live broker answers on the path, removes a stale socket file.
 */
export async function claimSocketPath(socketPath: string, group?: string | number): Promise<void> {
  const dir = path.dirname(socketPath);
  const gid = group === undefined ? undefined : resolveGroup(group);
  const mode = gid === undefined ? 0o700 : 0o750;
  try {
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true, mode });
      fs.chmodSync(dir, mode);
      if (gid !== undefined) fs.chownSync(dir, -1, gid);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EACCES';
    throw new QcopError('EACCES', `cannot create the socket folder ${dir}: ${code}`, { cause: err });
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new QcopError('EACCES', `the socket folder ${dir} is not writable`, { cause: err });
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new QcopError('EEXIST', `${socketPath} exists and is not a socket; not touching it`);
  if (await answers(socketPath)) throw new QcopError('EADDRINUSE', `a live broker already listens on ${socketPath}`);
  fs.unlinkSync(socketPath);
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socketPath);
    const done = (alive: boolean) => {
      s.destroy();
      resolve(alive);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}
