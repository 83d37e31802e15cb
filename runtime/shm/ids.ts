// User and group names to ids (/etc/passwd, /etc/group): the one reader of the account databases, used by the
// shared-memory API, the broker, its access policy (broker/acl/accounts.ts) and the service launcher.
import * as fs from 'node:fs';
import { QcopError } from '../protocol/errors.js';

// Account databases are small; one larger than this is not read (and no name resolves).
const MAX_DB_BYTES = 16 << 20;
const ID = /^(0|[1-9][0-9]{0,9})$/;

/** A decimal id (`"1000"`) as a number, or null when `text` is not one (ids are below 2^32). */
export function parseId(text: string): number | null {
  if (!ID.test(text)) return null;
  const n = Number(text);
  return n <= 0xffffffff ? n : null;
}

/** True when `n` is a valid uid or gid. */
export function isId(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/** The records (colon-separated fields) of an account database, or none when it cannot be read. */
export function accountRecords(path: string): string[][] {
  let text: string;
  try {
    const st = fs.statSync(path);
    if (!st.isFile() || st.size > MAX_DB_BYTES) return [];
    text = fs.readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const out: string[][] = [];
  for (const line of text.split('\n')) {
    // Comments and NIS compat lines (`+`, `-`) name nobody here.
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    out.push(line.split(':'));
  }
  return out;
}

/** A group (gid or name) to its gid; EINVAL when it does not exist. */
export function resolveGroup(group: number | string): number {
  return resolveId(group, '/etc/group', 'group');
}

/** A user (uid or name) to its uid; EINVAL when it does not exist. */
export function resolveUser(user: number | string): number {
  return resolveId(user, '/etc/passwd', 'user');
}

function resolveId(who: number | string, file: string, what: string): number {
  if (isId(who)) return who;
  if (typeof who === 'string') {
    const id = parseId(who) ?? parseId(accountRecords(file).find((f) => f[0] === who)?.[2] ?? '');
    if (id !== null) return id;
  }
  throw new QcopError('EINVAL', `${what} '${String(who)}' does not exist`);
}
