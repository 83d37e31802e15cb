// The policy file schema (docs/ACL.md): one parsed JSON file checked key by key into rules and quotas, every error naming the file and the JSON path.
import { QcopError } from '../../protocol/errors.js';
import { channelProblem } from '../../protocol/names.js';
import { isId, parseId } from '../../shm/ids.js';
import type { Accounts } from './accounts.js';

/** What a rule grants, per SPEC §9: `send` (send, deliver, call), `listen` (listen, receive, answer), `watch` (watch, isRegistered), `monitor` (SPEC §12). */
export type AclAction = 'send' | 'listen' | 'watch' | 'monitor';
export const ACL_ACTIONS: readonly AclAction[] = ['send', 'listen', 'watch', 'monitor'];

/** The per-user limits of SPEC §9, in the order docs/ACL.md lists them. */
export const QUOTA_KEYS = ['connections', 'connectionsPerSecond', 'listeners', 'watches', 'callsInFlight', 'queuedBytes', 'shmBytes'] as const;
export type QuotaKey = (typeof QUOTA_KEYS)[number];
/** Effective limits of one user; `Infinity` where nothing limits it. */
export type Quotas = Readonly<Record<QuotaKey, number>>;

/** Bounds of one load, checked before what they bound is allocated (docs/ACL.md "Limits"). */
export const ACL_LIMITS = {
  /** `*.json` files in the folder. */
  files: 256,
  /** Bytes of one file. */
  fileBytes: 1 << 20,
  /** Rules in all files together. */
  rules: 4096,
  /** Channel names and patterns in all rules together (every action's list counted). */
  entries: 16384,
} as const;

/** Whom a rule names: one uid (`uid: null` is `"user": "*"`, every user), or one gid. */
export type Subject = { kind: 'user'; uid: number | null } | { kind: 'group'; gid: number };

/** One checked rule. `label` is `FILE:INDEX` (file name without folder, index from 0). */
export interface PolicyRule {
  readonly label: string;
  readonly subject: Subject;
  readonly channels: Readonly<Record<AclAction, readonly string[]>>;
  /** Per-user overrides (only on rules naming one user). */
  readonly quota: Partial<Record<QuotaKey, number>> | null;
}

/** One checked file: its rules in order and its `defaults.quota`, if any. */
export interface PolicyFile {
  readonly name: string;
  readonly path: string;
  readonly rules: PolicyRule[];
  readonly defaults: Partial<Record<QuotaKey, number>> | null;
}

/** What the files of one load have used so far of ACL_LIMITS. */
export interface LoadBudget {
  rules: number;
  entries: number;
}

const FILE_KEYS = new Set(['rules', 'comment', 'defaults']);
const DEFAULTS_KEYS = new Set(['quota', 'comment']);
const RULE_KEYS = new Set(['user', 'group', 'send', 'listen', 'watch', 'monitor', 'quota', 'comment']);

type Json = Record<string, unknown>;

/** The EINVAL of a bad file: `acl file PATH: at $.rules[2].send[0]: reason`. */
export function fileError(path: string, at: string, reason: string): QcopError {
  return new QcopError('EINVAL', `acl file ${path}: at ${at}: ${reason}`);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `at` followed by key `k`, as JSONPath: `.key`, or `["odd key"]`. */
function prop(at: string, k: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? `${at}.${k}` : `${at}[${JSON.stringify(k)}]`;
}

function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Checks the parsed JSON `value` of the file `path` (named `name`) against the schema of
 * docs/ACL.md, resolving user and group names through `accounts`; counts into `budget`. Throws
 * the EINVAL of the first problem, naming the file and the JSON path.
 */
export function checkFile(path: string, name: string, value: unknown, accounts: Accounts, budget: LoadBudget): PolicyFile {
  const fail = (at: string, reason: string): never => {
    throw fileError(path, at, reason);
  };
  const keys = (obj: Json, at: string, allowed: Set<string>): void => {
    for (const k of Object.keys(obj)) if (!allowed.has(k)) fail(prop(at, k), `unknown key (known: ${[...allowed].join(', ')})`);
  };
  if (!isObject(value)) return fail('$', `a policy file is a JSON object, got ${show(value)}`);
  keys(value, '$', FILE_KEYS);
  if (value.comment !== undefined && typeof value.comment !== 'string') fail('$.comment', 'must be a string');

  let defaults: PolicyFile['defaults'] = null;
  if (value.defaults !== undefined) {
    const d = value.defaults;
    if (!isObject(d)) return fail('$.defaults', `must be an object, got ${show(d)}`);
    keys(d, '$.defaults', DEFAULTS_KEYS);
    if (d.comment !== undefined && typeof d.comment !== 'string') fail('$.defaults.comment', 'must be a string');
    if (d.quota !== undefined) defaults = checkQuota(d.quota, '$.defaults.quota', fail);
  }

  const rules: PolicyRule[] = [];
  const list = value.rules ?? [];
  if (!Array.isArray(list)) return fail('$.rules', `must be an array of rules, got ${show(list)}`);
  if (budget.rules + list.length > ACL_LIMITS.rules) {
    fail('$.rules', `${list.length} rules here take the policy past ${ACL_LIMITS.rules} rules in all files`);
  }
  budget.rules += list.length;
  for (let i = 0; i < list.length; i++) {
    const at = `$.rules[${i}]`;
    const r: unknown = list[i];
    if (!isObject(r)) return fail(at, `a rule is a JSON object, got ${show(r)}`);
    keys(r, at, RULE_KEYS);
    if (r.comment !== undefined && typeof r.comment !== 'string') fail(`${at}.comment`, 'must be a string');
    const subject = checkSubject(r, at, accounts, fail);
    const channels = {} as Record<AclAction, string[]>;
    for (const action of ACL_ACTIONS) channels[action] = checkChannels(r[action], `${at}.${action}`, budget, fail);
    let quota: PolicyRule['quota'] = null;
    if (r.quota !== undefined) {
      if (subject.kind !== 'user') fail(`${at}.quota`, 'a quota is per user: put it on a rule naming one "user" (group quotas do not exist)');
      else if (subject.uid === null) fail(`${at}.quota`, 'a quota for "user": "*" is a default: write it as the top-level "defaults": { "quota": {...} }');
      quota = checkQuota(r.quota, `${at}.quota`, fail);
    }
    rules.push({ label: `${name}:${i}`, subject, channels, quota });
  }
  return { name, path, rules, defaults };
}

/** `user` or `group`, exactly one, resolved to an id now (a name that does not exist is refused). */
function checkSubject(r: Json, at: string, accounts: Accounts, fail: (at: string, reason: string) => never): Subject {
  const hasUser = r.user !== undefined;
  const hasGroup = r.group !== undefined;
  if (hasUser === hasGroup) return fail(at, hasUser ? 'a rule names a "user" or a "group", not both' : 'a rule names a "user" or a "group"');
  const key = hasUser ? 'user' : 'group';
  const v = r[key];
  if (typeof v === 'number') {
    if (!isId(v)) fail(`${at}.${key}`, `${v} is not a valid ${hasUser ? 'uid' : 'gid'}`);
    return hasUser ? { kind: 'user', uid: v } : { kind: 'group', gid: v };
  }
  if (typeof v !== 'string' || v === '') return fail(`${at}.${key}`, `must be a name or an id, got ${show(v)}`);
  if (v === '*') {
    if (hasUser) return { kind: 'user', uid: null };
    return fail(`${at}.group`, '"*" is for "user" only (every user): write "user": "*"');
  }
  const id = parseId(v) ?? (hasUser ? accounts.userId(v) : accounts.groupId(v));
  if (id === null) {
    return fail(`${at}.${key}`, `${key} '${v}' does not exist in ${hasUser ? accounts.passwdPath : accounts.groupPath}`);
  }
  return hasUser ? { kind: 'user', uid: id } : { kind: 'group', gid: id };
}

/** An action's list: channel names and patterns, each valid (SPEC §1); absent is empty. */
function checkChannels(v: unknown, at: string, budget: LoadBudget, fail: (at: string, reason: string) => never): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return fail(at, `must be an array of channel names or patterns, got ${show(v)}`);
  if (budget.entries + v.length > ACL_LIMITS.entries) {
    fail(at, `${v.length} entries here take the policy past ${ACL_LIMITS.entries} channel entries in all files`);
  }
  budget.entries += v.length;
  const out: string[] = [];
  for (let j = 0; j < v.length; j++) {
    const e: unknown = v[j];
    if (typeof e !== 'string') return fail(`${at}[${j}]`, `must be a channel name or pattern, got ${show(e)}`);
    const problem = channelProblem(e, 'channel');
    if (problem !== null) fail(`${at}[${j}]`, problem);
    out.push(e);
  }
  return out;
}

/** A `quota` object: known keys only, each a positive whole number. */
function checkQuota(v: unknown, at: string, fail: (at: string, reason: string) => never): Partial<Record<QuotaKey, number>> {
  if (!isObject(v)) return fail(at, `must be an object, got ${show(v)}`);
  const out: Partial<Record<QuotaKey, number>> = {};
  for (const [k, n] of Object.entries(v)) {
    if (!(QUOTA_KEYS as readonly string[]).includes(k)) fail(prop(at, k), `unknown quota (known: ${QUOTA_KEYS.join(', ')})`);
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) fail(`${at}.${k}`, `must be a positive whole number, got ${show(n)}`);
    out[k as QuotaKey] = n as number;
  }
  return out;
}
