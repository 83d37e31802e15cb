// User and group names to ids (/etc/passwd, /etc/group): the one resolver of the broker and the shared-memory API.
import { readFileSync } from 'node:fs';
import { QcopError } from '../protocol/errors.js';

/** A group (gid or name) to its gid; EINVAL when it does not exist. */
export function resolveGroup(group: number | string): number {
  return resolveId(group, '/etc/group', 'group');
}

/** A user (uid or name) to its uid; EINVAL when it does not exist. */
export function resolveUser(user: number | string): number {
  return resolveId(user, '/etc/passwd', 'user');
}

function resolveId(who: number | string, file: string, what: string): number {
  if (typeof who === 'number' && Number.isInteger(who) && who >= 0) return who;
  if (typeof who === 'string') {
    if (/^\d+$/.test(who)) return Number(who);
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // no such file: the name does not exist either
    }
    for (const line of text.split('\n')) {
      const [name, , id] = line.split(':');
      if (name === who && id) return Number(id);
    }
  }
  throw new QcopError('EINVAL', `${what} '${String(who)}' does not exist`);
}
