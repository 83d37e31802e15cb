// The access policy of SPEC §9: who may send, listen, watch or monitor which channels, and each user's quotas, decided from the files of aclDir (docs/ACL.md).
import { NameIndex, type IndexEntry } from '../../protocol/name-index.js';
import { channelProblem, isPattern } from '../../protocol/names.js';
import { Pattern } from '../../protocol/pattern.js';
import { Accounts, type AccountFiles, type Identity } from './accounts.js';
import { readPolicyFolder, type SourceFile } from './read.js';
import { ACL_ACTIONS, ACL_LIMITS, QUOTA_KEYS, checkFile, fileError, type AclAction, type PolicyFile, type PolicyRule, type QuotaKey, type Quotas, type Subject } from './schema.js';

export type { Identity } from './accounts.js';
export { ACL_ACTIONS, ACL_LIMITS, QUOTA_KEYS, type AclAction, type PolicyRule, type QuotaKey, type Quotas } from './schema.js';

/** The answer for one request: whether it is allowed and by which rule (`FILE:INDEX`); `rule` is null for root, the broker's user, and denials. */
export interface AclDecision {
  readonly allowed: boolean;
  readonly rule: string | null;
}

/** Options of a load: where names are resolved, whose uid is the broker's, how many decisions are kept. */
export interface PolicyOptions extends AccountFiles {
  /** The broker's own uid, allowed everything like root; default this process's effective uid. */
  brokerUid?: number;
  /** Decisions kept per policy (oldest out first); default 4096, 0 keeps none. */
  cacheLimit?: number;
}

const PRIVILEGED: AclDecision = Object.freeze({ allowed: true, rule: null });
const DENIED: AclDecision = Object.freeze({ allowed: false, rule: null });
const UNLIMITED: Quotas = Object.freeze(Object.fromEntries(QUOTA_KEYS.map((k) => [k, Infinity])) as Record<QuotaKey, number>);
const DEFAULT_CACHE = 4096;

/** One rule's entries for one action, compiled once: exact names, and patterns through the linear matcher. */
interface Compiled {
  readonly id: number;
  readonly exact: readonly string[];
  readonly patterns: readonly Pattern[];
}

/** Rule ids (ascending) that list a name, for one action. */
type Ids = number[];

/**
 * Reads every `*.json` file of `dir` (sorted by name) and builds a new Policy; a file that is
 * missing, too large, not JSON or not valid against the schema refuses the whole load with
 * EINVAL naming the file and the JSON path (EACCES for a file or folder anyone may write).
 * The caller keeps its previous policy on a throw: reload replaces, never patches.
 */
export function loadPolicy(dir: string, options: PolicyOptions = {}): Policy {
  return parsePolicy(readPolicyFolder(dir), options);
}

/** Builds a Policy from file texts already read, in the order given (`loadPolicy` sorts by name). */
export function parsePolicy(sources: readonly SourceFile[], options: PolicyOptions = {}): Policy {
  if (sources.length > ACL_LIMITS.files) throw fileError(sources[ACL_LIMITS.files]!.path, '$', `more than ${ACL_LIMITS.files} policy files`);
  const accounts = new Accounts(options);
  const budget = { rules: 0, entries: 0 };
  const files: PolicyFile[] = [];
  for (const s of sources) {
    if (Buffer.byteLength(s.text, 'utf8') > ACL_LIMITS.fileBytes) throw fileError(s.path, '$', `larger than ${ACL_LIMITS.fileBytes} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(s.text);
    } catch (err) {
      throw fileError(s.path, '$', `not valid JSON: ${(err as Error).message}`);
    }
    files.push(checkFile(s.path, s.name, value, accounts, budget));
  }
  return new Policy(files, options);
}

function applies(s: Subject, who: Identity): boolean {
  if (s.kind === 'user') return s.uid === null || s.uid === who.uid;
  return s.gid === who.gid || who.groups.includes(s.gid);
}

/** `name` is `LITERAL*`: one final star, no other wildcard; every name a pattern starting with LITERAL matches is then matched by it. */
function isPrefixPattern(name: string): boolean {
  return name.indexOf('*') === name.length - 1 && !name.includes('?') && !name.includes('[');
}

/**
 * One loaded policy, immutable: a reload builds a new one (so its decision cache starts empty).
 * Decisions: root (uid 0) and `brokerUid` are allowed everything (rule null); anyone else is
 * allowed what the first rule in file order naming them (by uid, `*`, primary gid or a
 * supplementary group) grants for that action and channel, and nothing else.
 */
export class Policy {
  /** Every rule in decision order: files by name, then index in file. */
  readonly rules: readonly PolicyRule[];
  /** The file names, in order. */
  readonly files: readonly string[];
  readonly brokerUid: number;
  private readonly indexes = new Map<AclAction, NameIndex<Ids, null>>();
  private readonly compiled = new Map<AclAction, Compiled[]>();
  private readonly defaults: Partial<Record<QuotaKey, number>> = {};
  private readonly overrides = new Map<number, Partial<Record<QuotaKey, number>>>();
  private readonly cache = new Map<string, AclDecision>();
  private readonly quotaCache = new Map<number, Quotas>();
  private readonly keys = new WeakMap<Identity, string>();
  private readonly cacheLimit: number;

  /** Builds the policy of checked files; EINVAL when two places set the same quota (naming both). */
  constructor(files: readonly PolicyFile[], options: { brokerUid?: number; cacheLimit?: number } = {}) {
    this.brokerUid = options.brokerUid ?? process.geteuid?.() ?? 0;
    this.cacheLimit = options.cacheLimit ?? DEFAULT_CACHE;
    this.files = files.map((f) => f.name);
    const rules: PolicyRule[] = [];
    for (const action of ACL_ACTIONS) {
      this.indexes.set(action, new NameIndex<Ids, null>(() => null, { cacheLimit: 0 }));
      this.compiled.set(action, []);
    }
    const defaultsFrom = new Map<QuotaKey, string>();
    const overrideFrom = new Map<string, string>();
    for (const file of files) {
      for (const [k, n] of Object.entries(file.defaults ?? {}) as Array<[QuotaKey, number]>) {
        const earlier = defaultsFrom.get(k);
        if (earlier !== undefined) throw fileError(file.path, `$.defaults.quota.${k}`, `default quota ${k} is already set in ${earlier}`);
        defaultsFrom.set(k, file.name);
        this.defaults[k] = n;
      }
      file.rules.forEach((rule, i) => {
        const id = rules.push(rule) - 1;
        if (rule.quota && rule.subject.kind === 'user' && rule.subject.uid !== null) {
          const uid = rule.subject.uid;
          let o = this.overrides.get(uid);
          if (!o) this.overrides.set(uid, (o = {}));
          for (const [k, n] of Object.entries(rule.quota) as Array<[QuotaKey, number]>) {
            const earlier = overrideFrom.get(`${uid}:${k}`);
            if (earlier !== undefined) throw fileError(file.path, `$.rules[${i}].quota.${k}`, `quota ${k} of uid ${uid} is already set by rule ${earlier}`);
            overrideFrom.set(`${uid}:${k}`, rule.label);
            o[k] = n;
          }
        }
        for (const action of ACL_ACTIONS) this.add(action, id, rule.channels[action]);
      });
    }
    this.rules = rules;
  }

  /** True for root and the broker's own user: allowed everything, whatever the files say. */
  isPrivileged(who: Identity): boolean {
    return who.uid === 0 || who.uid === this.brokerUid;
  }

  /**
   * May `who` do `action` on `channel`? For a concrete channel: the first rule (in file order)
   * naming `who` whose list for `action` holds `channel` exactly or a pattern matching it. For a
   * pattern (as a listener or watch name): granted only when a rule lists that same pattern, or a
   * pattern `PREFIX*` (one final star, no other wildcard) whose PREFIX starts it, so that every
   * channel it matches is granted; a listen on a pattern that is only partly granted is for
   * `mayListenAny` and `listenable`. An invalid name is denied.
   */
  allowed(who: Identity, action: AclAction, channel: string): AclDecision {
    if (this.isPrivileged(who)) return PRIVILEGED;
    const key = `${this.keyOf(who)}\0${action}\0${channel}`;
    let d = this.cache.get(key);
    if (d === undefined) {
      d = channelProblem(channel) !== null ? DENIED : this.decide(who, action, channel);
      this.remember(key, d);
    }
    return d;
  }

  /** Whether a message on the concrete `channel` may reach `who`'s listeners (per-message filtering of pattern listeners): `allowed(who, 'listen', channel).allowed`. */
  listenable(who: Identity, channel: string): boolean {
    return this.allowed(who, 'listen', channel).allowed;
  }

  /** Whether a listen on `pattern` may ever receive anything: see `mayAny`. */
  mayListenAny(who: Identity, pattern: string): boolean {
    return this.mayAny(who, 'listen', pattern);
  }

  /**
   * True when some rule naming `who` grants `action` on a channel that `pattern` could match
   * (for a concrete name: `allowed`). Conservative, never a false "no": an exact entry counts
   * when `pattern` matches it; a pattern entry counts when the literal prefixes of the two
   * (up to the first wildcard of each) agree, one starting the other: `cam/*` and `cam/front/*`
   * may overlap, `cam/*` and `mic/*` cannot; `a*x` and `a*y` are said to overlap though no
   * channel matches both.
   */
  mayAny(who: Identity, action: AclAction, pattern: string): boolean {
    if (this.isPrivileged(who)) return true;
    if (!isPattern(pattern)) return this.allowed(who, action, pattern).allowed;
    const key = `${this.keyOf(who)}\0${action}*\0${pattern}`;
    let d = this.cache.get(key);
    if (d === undefined) {
      d = channelProblem(pattern) !== null ? DENIED : this.overlaps(who, action, new Pattern(pattern));
      this.remember(key, d);
    }
    return d.allowed;
  }

  /**
   * The effective per-user limits of `who` (by uid alone: quotas are per user), key by key: the
   * uid's own override (a `quota` on a rule naming that user), else the file-level
   * `defaults.quota`, else Infinity. Root and the broker's user take only their own overrides:
   * defaults meant for applications never limit them.
   */
  quotaFor(who: Identity): Quotas {
    const uid = who.uid;
    let q = this.quotaCache.get(uid);
    if (q) return q;
    const own = this.overrides.get(uid);
    const fallback = this.isPrivileged(who) ? {} : this.defaults;
    if (!own && Object.keys(fallback).length === 0) {
      q = UNLIMITED;
    } else {
      const out = {} as Record<QuotaKey, number>;
      for (const k of QUOTA_KEYS) out[k] = own?.[k] ?? fallback[k] ?? Infinity;
      q = Object.freeze(out);
    }
    if (this.quotaCache.size >= Math.max(this.cacheLimit, 1)) this.quotaCache.delete(this.quotaCache.keys().next().value as number);
    this.quotaCache.set(uid, q);
    return q;
  }

  /** Decisions held in the cache now (at most the cache limit). */
  get cacheSize(): number {
    return this.cache.size;
  }

  private add(action: AclAction, id: number, names: readonly string[]): void {
    if (names.length === 0) return;
    const index = this.indexes.get(action)!;
    const exact: string[] = [];
    const patterns: Pattern[] = [];
    for (const name of names) {
      const entry: IndexEntry<Ids> = index.get(name) ?? index.add(name, []);
      if (entry.value[entry.value.length - 1] === id) continue; // listed twice in one rule
      entry.value.push(id);
      if (entry.pattern) patterns.push(entry.pattern);
      else exact.push(name);
    }
    this.compiled.get(action)!.push({ id, exact, patterns });
  }

  private decide(who: Identity, action: AclAction, channel: string): AclDecision {
    const index = this.indexes.get(action)!;
    let best = Infinity;
    const consider = (ids: Ids): void => {
      for (const id of ids) {
        if (id >= best) return;
        if (applies(this.rules[id]!.subject, who)) {
          best = id;
          return;
        }
      }
    };
    const same = index.get(channel);
    if (isPattern(channel)) {
      // A pattern asked for: the same text, or a PREFIX* rule pattern whose prefix starts it.
      if (same) consider(same.value);
      for (const e of index.matching(channel)) if (isPrefixPattern(e.name)) consider(e.value);
    } else {
      if (same && !same.pattern) consider(same.value);
      for (const e of index.matching(channel)) consider(e.value);
    }
    return best === Infinity ? DENIED : Object.freeze({ allowed: true, rule: this.rules[best]!.label });
  }

  private overlaps(who: Identity, action: AclAction, wanted: Pattern): AclDecision {
    for (const c of this.compiled.get(action)!) {
      const rule = this.rules[c.id]!;
      if (!applies(rule.subject, who)) continue;
      const hit = c.exact.some((name) => wanted.matches(name)) || c.patterns.some((p) => p.prefix.startsWith(wanted.prefix) || wanted.prefix.startsWith(p.prefix));
      if (hit) return Object.freeze({ allowed: true, rule: rule.label });
    }
    return DENIED;
  }

  /** The cache key of an identity: uid, gid and the sorted groups (an identity object is taken as immutable). */
  private keyOf(who: Identity): string {
    let k = this.keys.get(who);
    if (k === undefined) {
      k = `${who.uid}:${who.gid}:${[...new Set(who.groups)].sort((a, b) => a - b).join(',')}`;
      this.keys.set(who, k);
    }
    return k;
  }

  private remember(key: string, d: AclDecision): void {
    if (this.cacheLimit <= 0) return;
    if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, d);
  }
}
