// User and group names of the system (/etc/passwd, /etc/group) resolved to ids for the access policy (SPEC §9); no dependency, paths injectable.
import { QcopError } from '../../protocol/errors.js';
import { accountRecords as records, isId, parseId } from '../../shm/ids.js';
import type { PeerIdentity } from '../peer.js';

/** Who asks, as the kernel says (SO_PEERCRED at accept): uid, primary gid, supplementary groups. */
export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
}

/** Where the account databases are read from; tests point these at temporary files. */
export interface AccountFiles {
  /** Default `/etc/passwd`. */
  passwd?: string;
  /** Default `/etc/group`. */
  group?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/**
 * The system's users and groups, read on first use and kept: one `Accounts` serves one policy
 * load (or one `qcop acl check`), so an edit of /etc/passwd is seen by the next load.
 */
export class Accounts {
  readonly passwdPath: string;
  readonly groupPath: string;
  private users: PasswdEntry[] | null = null;
  private groupList: GroupEntry[] | null = null;

  constructor(files: AccountFiles = {}) {
    this.passwdPath = files.passwd ?? '/etc/passwd';
    this.groupPath = files.group ?? '/etc/group';
  }

  private passwd(): PasswdEntry[] {
    if (this.users) return this.users;
    const out: PasswdEntry[] = [];
    for (const f of records(this.passwdPath)) {
      const uid = parseId(f[2] ?? '');
      const gid = parseId(f[3] ?? '');
      if (f[0] && uid !== null && gid !== null) out.push({ name: f[0], uid, gid });
    }
    return (this.users = out);
  }

  private groups(): GroupEntry[] {
    if (this.groupList) return this.groupList;
    const out: GroupEntry[] = [];
    for (const f of records(this.groupPath)) {
      const gid = parseId(f[2] ?? '');
      if (f[0] && gid !== null) out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
    }
    return (this.groupList = out);
  }

  /** The uid of a user name, or null when the passwd file has no such user. */
  userId(name: string): number | null {
    return this.passwd().find((u) => u.name === name)?.uid ?? null;
  }

  /** The name of a uid, or null when the passwd file has none (the first entry wins). */
  userName(uid: number): string | null {
    return this.passwd().find((u) => u.uid === uid)?.name ?? null;
  }

  /** The gid of a group name, or null when the group file has no such group. */
  groupId(name: string): number | null {
    return this.groups().find((g) => g.name === name)?.gid ?? null;
  }

  /** A user given as a name or a decimal uid: its uid; a decimal id is taken as is. EINVAL for an unknown name. */
  resolveUser(user: string | number): number {
    if (typeof user === 'number') {
      if (isId(user)) return user;
      throw new QcopError('EINVAL', `user ${user} is not a valid uid`);
    }
    const id = parseId(user) ?? this.userId(user);
    if (id === null) throw new QcopError('EINVAL', `user '${user}' does not exist in ${this.passwdPath}`);
    return id;
  }

  /** A group given as a name or a decimal gid: its gid; a decimal id is taken as is. EINVAL for an unknown name. */
  resolveGroup(group: string | number): number {
    if (typeof group === 'number') {
      if (isId(group)) return group;
      throw new QcopError('EINVAL', `group ${group} is not a valid gid`);
    }
    const id = parseId(group) ?? this.groupId(group);
    if (id === null) throw new QcopError('EINVAL', `group '${group}' does not exist in ${this.groupPath}`);
    return id;
  }

  /**
   * The identity a user's processes have after login: its uid and primary gid from the passwd
   * file, and as supplementary groups every group whose member list names it (plus the primary
   * gid, as `id -G` shows). `user` is a name or a decimal uid; either must have a passwd entry
   * (EINVAL otherwise: without one there is no primary group to answer with).
   */
  identityOf(user: string): Identity & { name: string } {
    const uid = parseId(user);
    const entry = this.passwd().find((u) => (uid === null ? u.name === user : u.uid === uid));
    if (!entry) throw new QcopError('EINVAL', `user '${user}' does not exist in ${this.passwdPath}`);
    const groups = new Set<number>([entry.gid]);
    for (const g of this.groups()) if (g.members.includes(entry.name)) groups.add(g.gid);
    return { name: entry.name, uid: entry.uid, gid: entry.gid, groups: [...groups].sort((a, b) => a - b) };
  }
}

/**
 * The identity a carrier gives the connections it authenticated for `user` (a name or uid from
 * /etc/passwd; SPEC §9: a TCP token, a client certificate, a serial line): its uid, primary gid
 * and supplementary groups; pid 0 (not a local process). EINVAL for an unknown user.
 */
export function identityOfUser(user: string | number): PeerIdentity {
  const id = new Accounts().identityOf(String(user));
  return { pid: 0, uid: id.uid, gid: id.gid, groups: id.groups };
}
