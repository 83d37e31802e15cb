// Where the broker's socket lives (SPEC §6) and taking that place safely (SPEC §8): a folder this
// user owns that nobody else can write, no symbolic link followed, live or stale socket.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { QcopError } from '../protocol/errors.js';
import { resolveGroup } from '../shm/ids.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;

/** The default socket path: $QCOP_SOCKET, $XDG_RUNTIME_DIR/qcop, /run/qcop for root, /tmp/qcop-<uid>. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.QCOP_SOCKET) return env.QCOP_SOCKET;
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'qcop', 'qcop.sock');
  const uid = os.userInfo().uid;
  if (uid === 0) return '/run/qcop/qcop.sock';
  return `/tmp/qcop-${uid}/qcop.sock`;
}

export { resolveGroup };

function euid(): number {
  return process.geteuid?.() ?? os.userInfo().uid;
}

/**
 * Why the folder open as `fd` must not hold this user's socket or token, or null; `owners` are
 * the uids trusted. The folder was opened without following a symbolic link (`openFolder`).
 */
function folderProblem(fd: number, owners: number[]): string | null {
  const st = fs.fstatSync(fd);
  if (!owners.includes(st.uid)) return `belongs to uid ${st.uid}, not to uid ${euid()}${owners.includes(0) && euid() !== 0 ? ' or root' : ''}`;
  if (st.mode & 0o022) return `can be written by other users (mode 0${(st.mode & 0o777).toString(8)})`;
  return null;
}

/** Opens a folder itself, never through a symbolic link: null when it does not exist. */
function openFolder(dir: string): number | null {
  try {
    return fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    let code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR' && isLink(dir)) code = 'ELOOP'; // O_DIRECTORY wins over O_NOFOLLOW in Linux's answer
    if (code === 'ELOOP') throw new QcopError('EACCES', `${dir} is a symbolic link; qcop never follows one it did not create: remove it (rm ${dir})`);
    if (code === 'ENOTDIR') throw new QcopError('EACCES', `${dir} is not a folder; remove it or choose another --socket`);
    throw new QcopError('EACCES', `cannot open the folder ${dir}: ${code ?? (err as Error).message}`, { cause: err });
  }
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function advice(dir: string, problem: string): string {
  if (problem.startsWith('belongs')) {
    return `another user may have created it to receive your messages or to run your broker in a folder they control. ` +
      `Remove it as root (rm -r ${dir}) or use another folder (--socket, $QCOP_SOCKET or $XDG_RUNTIME_DIR)`;
  }
  return `anyone could replace the socket there. Fix it with: chmod go-w ${dir}`;
}

/**
 * Makes the broker's folder (0700, or 0750 with `gid`) or checks the one there: it must be a
 * real folder (not a symbolic link) owned by this user and writable by nobody else, else
 * EACCES saying what to do. With a group, the folder is given to that group (0750).
 */
export function prepareFolder(dir: string, gid?: number): void {
  let fd = openFolder(dir);
  const created = fd === null;
  if (fd === null) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EACCES';
      throw new QcopError('EACCES', `cannot create the socket folder ${dir}: ${code}`, { cause: err });
    }
    fd = openFolder(dir)!;
  }
  try {
    const problem = folderProblem(fd, [euid()]);
    if (problem) throw new QcopError('EACCES', `the socket folder ${dir} ${problem}: not using it; ${advice(dir, problem)}`);
    try {
      if (gid !== undefined) {
        fs.fchownSync(fd, -1, gid);
        fs.fchmodSync(fd, 0o750);
      } else if (created) {
        fs.fchmodSync(fd, 0o700);
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EPERM';
      throw new QcopError('EACCES', `cannot give the folder ${dir} to group ${gid}: ${code} (the broker's user must be root or a member of that group)`, { cause: err });
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The client's side of SPEC §8 for the default socket of a non-root user (`/tmp/qcop-<uid>`,
 * `$XDG_RUNTIME_DIR/qcop`): the folder must be owned by this user or root and writable by
 * nobody else, or another user may be answering in the broker's place. Null when it is safe
 * (or absent: the dial then finds no broker); otherwise the EACCES to fail with.
 */
export function checkClientFolder(socketPath: string): QcopError | null {
  const dir = path.dirname(socketPath);
  let fd: number | null;
  try {
    fd = openFolder(dir);
  } catch (err) {
    return new QcopError('EACCES', `not connecting to ${socketPath}: ${(err as Error).message.replace(/^EACCES: /, '')}`);
  }
  if (fd === null) return null;
  try {
    const problem = folderProblem(fd, [euid(), 0]);
    if (!problem) return null;
    return new QcopError('EACCES', `not connecting to ${socketPath}: its folder ${dir} ${problem}, so whoever answers there may not be your broker; ${advice(dir, problem)}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** The socket path a client checks before dialing: the default of a non-root user (null otherwise). */
export function defaultPathToCheck(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.QCOP_SOCKET || euid() === 0) return null;
  return defaultSocketPath(env);
}

/**
 * Makes the socket folder (0700, or 0750 with a group) and clears the way: refuses with
 * EADDRINUSE when a live broker answers on the path, removes a stale socket file.
 */
export async function claimSocketPath(socketPath: string, group?: string | number): Promise<void> {
  const dir = path.dirname(socketPath);
  prepareFolder(dir, group === undefined ? undefined : resolveGroup(group));
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

/** Gives the new socket its mode, and its group when one is configured (SPEC §6). */
export function setSocketAccess(socketPath: string, group?: string | number): void {
  try {
    if (group !== undefined) fs.lchownSync(socketPath, -1, resolveGroup(group));
    fs.chmodSync(socketPath, group === undefined ? 0o600 : 0o660);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EPERM';
    throw new QcopError('EACCES', `cannot give ${socketPath} to group ${group}: ${code} (the broker's user must be root or a member of that group)`, { cause: err });
  }
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
