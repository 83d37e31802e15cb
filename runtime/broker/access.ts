// SPEC §9 in the broker: the policy of `aclDir` applied to each request, denials counted per user and logged once, reloads.
// Types only: a broker without aclDir never loads the policy code (startBroker imports it on demand).
import type { AclAction, Identity, Policy, Quotas } from './acl/policy.js';

/** Who a connection is, for the policy: its kernel identity, or nobody (a carrier's peer without a configured user). */
export interface Subject {
  readonly peer: Identity | null;
  readonly id: number;
  /** The last answers for this connection (a stream of messages asks the same question): valid for one policy generation. */
  readonly aclCache: AclCache;
}

/** One entry per question on the hot path: the channel last allowed to send on, the channel last asked to receive and the answer. */
export interface AclCache { gen: number; send: string; listen: string; listenOk: boolean }

export const newAclCache = (): AclCache => ({ gen: -1, send: '', listen: '', listenOk: false });

/** Not root, not the broker's user, in no group: only rules for every user (`"*"`) grant it anything. */
const NOBODY: Identity = Object.freeze({ uid: -1, gid: -1, groups: [] });

const UNLIMITED: Quotas = Object.freeze({
  connections: Infinity, connectionsPerSecond: Infinity, listeners: Infinity, watches: Infinity, callsInFlight: Infinity, queuedBytes: Infinity, shmBytes: Infinity,
});

/** The broker's effective uid: its own user may monitor (SPEC §12). */
const BROKER_UID = process.geteuid?.() ?? 0;

/** At most this many (user, action, channel) denials are remembered for logging once each. */
const LOGGED_LIMIT = 4096;

/**
 * Without a policy everything is allowed (whoever the socket's mode lets in, SPEC §9). With one,
 * each request is checked: `check` answers and, for a denial, counts it for the user and logs it
 * the first time that user is denied that action on that channel.
 */
export class Access {
  private policy: Policy | null;
  private readonly denied = new Map<number, number>();
  private readonly logged = new Set<string>();
  /** Loads that failed since start (the previous policy stayed). */
  reloadFailures = 0;
  reloads = 0;
  /** Bumped by each policy loaded: every connection's AclCache is stale then. */
  private generation = 0;

  constructor(
    policy: Policy | null,
    private readonly load: (() => Policy) | null,
    private readonly log: (level: 'warn' | 'info' | 'error', text: string) => void,
  ) {
    this.policy = policy;
  }

  get active(): boolean {
    return this.policy !== null;
  }

  identity(c: Subject): Identity {
    return c.peer ?? NOBODY;
  }

  /** True when `c` may do `action` on `channel` (a name or, for listen and watch, a pattern). */
  check(c: Subject, action: AclAction, channel: string, pattern = false): boolean {
    const p = this.policy;
    if (!p) return true;
    const cache = this.fresh(c);
    if (action === 'send' && cache.send === channel) return true;
    const who = this.identity(c);
    const ok = pattern ? p.mayAny(who, action, channel) : p.allowed(who, action, channel).allowed;
    if (!ok) this.deny(who, action, channel);
    else if (action === 'send') cache.send = channel;
    return ok;
  }

  /**
   * SPEC §12: who may monitor `patterns` (none: everything). Root and the broker's own user see
   * everything (null); with a policy, a user whose `monitor` rules overlap every pattern gets a
   * per-channel filter; anyone else is refused (false).
   */
  monitorFilter(c: Subject, patterns: string[]): ((channel: string) => boolean) | null | false {
    const who = this.identity(c);
    if (who.uid === 0 || who.uid === BROKER_UID) return null;
    const p = this.policy;
    const asked = patterns.length ? patterns : ['*'];
    const refused = p ? asked.find((x) => !p.mayAny(who, 'monitor', x)) : asked[0];
    if (refused !== undefined) {
      if (p) this.deny(who, 'monitor', refused);
      return false;
    }
    return (channel) => this.policy !== null && this.policy.allowed(who, 'monitor', channel).allowed;
  }

  /** The per-user limits of `who` (SPEC §9); unlimited without a policy. */
  quotaFor(who: Identity): Quotas {
    return this.policy ? this.policy.quotaFor(who) : UNLIMITED;
  }

  /** Whether a message on `channel` may reach `c` (per-message filtering of pattern listeners). */
  listenable(c: Subject, channel: string): boolean {
    if (this.policy === null) return true;
    const cache = this.fresh(c);
    if (cache.listen !== channel) {
      cache.listen = channel;
      cache.listenOk = this.policy.listenable(this.identity(c), channel);
    }
    return cache.listenOk;
  }

  private fresh(c: Subject): AclCache {
    const cache = c.aclCache;
    if (cache.gen !== this.generation) {
      cache.gen = this.generation;
      cache.send = '';
      cache.listen = '';
    }
    return cache;
  }

  /** The receivers of a message on `channel` that may receive it; the same array when all may. */
  filter<C extends Subject>(receivers: C[], channel: string): C[] {
    if (!this.policy || receivers.length === 0) return receivers;
    let out: C[] | null = null;
    for (let i = 0; i < receivers.length; i++) {
      const r = receivers[i]!;
      const ok = this.listenable(r, channel);
      if (!ok && out === null) out = receivers.slice(0, i);
      else if (ok && out !== null) out.push(r);
    }
    return out ?? receivers;
  }

  /** Re-reads the policy (SIGHUP, `qcop broker --reload`); a bad file keeps the old one. True when applied. */
  reload(): boolean {
    if (!this.load) return false;
    try {
      this.policy = this.load();
      this.generation++;
      this.logged.clear();
      this.reloads++;
      this.log('info', `acl: policy reloaded (${this.policy.files.length} file(s), ${this.policy.rules.length} rule(s))`);
      return true;
    } catch (e) {
      this.reloadFailures++;
      this.log('error', `acl: ${(e as Error).message}; the previous policy stays`);
      return false;
    }
  }

  stats(): Record<string, unknown> {
    const p = this.policy;
    if (!p) return { enabled: false };
    return {
      enabled: true, files: p.files, rules: p.rules.length, reloads: this.reloads, reloadFailures: this.reloadFailures,
      deniedByUser: Object.fromEntries([...this.denied].map(([uid, n]) => [String(uid), n])),
    };
  }

  private deny(who: Identity, action: AclAction, channel: string): void {
    this.denied.set(who.uid, (this.denied.get(who.uid) ?? 0) + 1);
    const key = `${who.uid}\0${action}\0${channel}`;
    if (this.logged.has(key) || this.logged.size >= LOGGED_LIMIT) return;
    this.logged.add(key);
    this.log('warn', `acl: denied uid ${who.uid} ${action} on ${channel}`);
  }
}
