// Keys of shared segments and semaphores: validation (SPEC §3) and the safe, per-uid system names they map to.
import type { Hash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { QcopError } from '../protocol/errors.js';
import { channelProblem } from '../protocol/names.js';

/** What a system object is: a data segment, or the registry file of a semaphore. */
export type ShmKind = 'segment' | 'semaphore';

/** Prefix of every qcop object under /dev/shm. */
export const NAME_PREFIX = 'qcop.';

/** Where glibc's shm_open keeps its objects. */
export const SHM_DIR = '/dev/shm';

/** The qcop entries of /dev/shm, of every user, sorted; none when it cannot be read. */
export function qcopEntries(): string[] {
  try {
    return readdirSync(SHM_DIR).filter((e) => e.startsWith(NAME_PREFIX)).sort();
  } catch {
    return [];
  }
}

const KIND_TAG: Record<ShmKind, string> = { segment: 'm', semaphore: 's' };
const MAX_NAME = 250; // NAME_MAX is 255 for the /dev/shm entry; keep a margin
const KEEP = /^[A-Za-z0-9_-]$/;

/** Returns the key when it is valid (a channel-like name without `.`/`..` segments), else throws EINVAL. */
export function validateKey(key: unknown): string {
  if (typeof key !== 'string') throw new QcopError('EINVAL', 'shared-memory key must be a string');
  const problem = channelProblem(key, 'shared-memory key');
  if (problem) throw new QcopError('EINVAL', problem);
  if (key.split('/').some((s) => s === '..' || s === '.')) {
    throw new QcopError('EINVAL', `shared-memory key '${key}' has a '.' or '..' segment`);
  }
  return key;
}

/** Escapes a key into shm-name characters: `/` becomes `.`, unsafe bytes `%XX`; reversible by `unescapeKey`. */
export function escapeKey(key: string): string {
  let out = '';
  for (const b of Buffer.from(key, 'utf8')) {
    const ch = String.fromCharCode(b);
    if (ch === '/') out += '.';
    else if (b < 0x80 && KEEP.test(ch)) out += ch;
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Inverse of `escapeKey`, or null for a hashed name (whose key is only in the header). */
export function unescapeKey(escaped: string): string | null {
  if (escaped.startsWith('~')) return null;
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    const ch = escaped[i];
    if (ch === '.') bytes.push(0x2f);
    else if (ch === '%') { bytes.push(parseInt(escaped.slice(i + 1, i + 3), 16)); i += 2; }
    else bytes.push(ch.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The shm_open name of a key for a user: `/qcop.<uid>.<m|s>.<escaped key>`, or a hash when too long. */
export function systemName(kind: ShmKind, key: string, uid = currentUid()): string {
  const head = `/${NAME_PREFIX}${uid}.${KIND_TAG[kind]}.`;
  const escaped = escapeKey(key);
  if (head.length + escaped.length <= MAX_NAME) return head + escaped;
  // node:crypto is loaded only here, for the rare long key: it costs a daemon about 1 MiB at start.
  const { createHash } = createRequire(import.meta.url)('node:crypto') as { createHash(algorithm: string): Hash };
  return `${head}~${createHash('sha256').update(key).digest('hex').slice(0, 48)}`;
}

/** Parsed form of a /dev/shm entry name, or null when it is not a qcop object. */
export interface ParsedName { uid: number; kind: ShmKind; key: string | null }

/** Splits a /dev/shm entry (without the leading `/`) back into uid, kind and, unless hashed, key. */
export function parseSystemName(entry: string): ParsedName | null {
  const m = /^qcop\.(\d+)\.([ms])\.(.+)$/.exec(entry);
  if (!m) return null;
  let key: string | null;
  try { key = unescapeKey(m[3]); } catch { key = null; }
  return { uid: Number(m[1]), kind: m[2] === 'm' ? 'segment' : 'semaphore', key };
}

/** The real uid of this process (0 where the platform has none). */
export function currentUid(): number {
  return process.getuid?.() ?? 0;
}
