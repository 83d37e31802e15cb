// Throwaway Unix users and groups for attacks between users (SPEC §8 files): created as root, run
// with setpriv, removed afterwards even when a test fails. Not root: the test fails saying how to run it.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { Proc, spawnClient } from '../helpers/procs.js';
import { op, traffic, type Scene } from './harness.js';

export interface User {
  name: string;
  uid: number;
  gid: number;
}

const users = new Set<string>();
const groups = new Set<string>();
const paths = new Set<string>();
const tag = `qcop-t${process.pid.toString(36)}`;
const OURS = /^qcop-t([0-9a-z]+)-(?:atk|vic|mem|out|grp|brk|prd|rcv|svc)$/;

/** Fails (never skips) when not root, with the command that runs `file` as root. */
export function requireRoot(file: string): void {
  if (process.getuid?.() === 0) return;
  throw new Error(`${file} creates throwaway users (useradd/userdel) and runs processes as them (setpriv): run it as root:\n` +
    `  sudo env "PATH=$PATH" node --import tsx ${file}`);
}

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** A new user without home or login shell, in `group` (a name from `addGroup`) when given. */
export function addUser(role: string, group?: string): User {
  const name = `${tag}-${role}`;
  sweepLeftovers();
  run('useradd', ['-M', '-N', '-s', '/usr/sbin/nologin', ...(group ? ['-G', group] : []), name]);
  users.add(name);
  const user = { name, uid: Number(run('id', ['-u', name])), gid: Number(run('id', ['-g', name])) };
  removeLater(`/tmp/qcop-${user.uid}`);
  fs.rmSync(`/tmp/qcop-${user.uid}`, { recursive: true, force: true }); // left by an earlier owner of this uid
  return user;
}

/** A new group; returns its name and gid. */
export function addGroup(role: string): { name: string; gid: number } {
  sweepLeftovers();
  const name = `${tag}-${role}`;
  run('groupadd', [name]);
  groups.add(name);
  return { name, gid: Number(run('getent', ['group', name]).split(':')[2]) };
}

/** A path removed when the test file ends. */
export function removeLater(p: string): void {
  paths.add(p);
}

/** The environment of a user's process: no QCOP_SOCKET or XDG_RUNTIME_DIR, so the /tmp/qcop-<uid> default applies. */
export const defaultEnv: NodeJS.ProcessEnv = { QCOP_SOCKET: undefined, XDG_RUNTIME_DIR: undefined, QCOP_TCP_TOKEN: undefined, HOME: '/' };

/** Runs `cmd` as `user` (no supplementary groups unless `groups` are given) and collects its output. */
export function asUser(user: User, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, extraGroups: number[] = []): Proc {
  const groupArgs = extraGroups.length ? [`--groups=${extraGroups.join(',')}`] : ['--clear-groups'];
  return new Proc('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, ...groupArgs, cmd, ...args], { ...defaultEnv, ...env });
}

/** Runs `cmd` as `user` to completion. */
export async function runAs(user: User, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, extraGroups: number[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = asUser(user, cmd, args, env, extraGroups);
  p.child.stdin!.end();
  const { code } = await p.exited;
  return { code, stdout: p.lines.join('\n'), stderr: p.stderr };
}

/** The harness's scene (a bystander and its sender, real processes) around a broker started another way: as a user, under a ulimit. */
export async function sceneAround(broker: Proc, socket: string): Promise<Scene> {
  const bystander = await spawnClient(socket, 'bystander');
  await op(bystander, { op: 'listen', channel: 'bystander/feed', quiet: true });
  const sender = await spawnClient(socket, 'bystander-sender');
  const s: Scene = { broker: Object.assign(broker, { socket }), bystander, sender, sent: 0 };
  await traffic(s, 100);
  return s;
}

/** Removes every user, group and path this file created; safe to call twice. */
export function removeUsers(): void {
  for (const p of paths) fs.rmSync(p, { recursive: true, force: true });
  paths.clear();
  for (const name of users) {
    try {
      execFileSync('userdel', ['-f', name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
  users.clear();
  for (const name of groups) {
    try {
      execFileSync('groupdel', [name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
  groups.clear();
}
process.on('exit', removeUsers);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    removeUsers();
    process.exit(130);
  });
}

let swept = false;
/** Users and groups of an earlier run that was killed before it could remove them (its pid is gone). */
function sweepLeftovers(): void {
  if (swept) return;
  swept = true;
  for (const [file, del] of [['/etc/passwd', 'userdel'], ['/etc/group', 'groupdel']] as const) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const name = line.split(':')[0]!;
      const m = OURS.exec(name);
      if (!m || alive(parseInt(m[1]!, 36))) continue;
      try {
        execFileSync(del, del === 'userdel' ? ['-f', name] : [name], { stdio: 'ignore' });
      } catch {
        // gone meanwhile
      }
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
