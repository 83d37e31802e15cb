// SPEC §9 quotas: what each user holds, all its connections together, against its limits (dbus-broker style accounting).
import type { Identity, QuotaKey, Quotas } from './acl/policy.js';

/** A connection, as the accounting sees it: it carries its own entry, so the per-message paths need no lookup. */
export interface Holder {
  readonly id: number;
  quotaEntry: QuotaEntry | null;
}

type Usage = Record<Exclude<QuotaKey, 'connectionsPerSecond'>, number>;

/** What one connection holds, its user's usage (shared by that user's connections) and the user's limits. */
export interface QuotaEntry { uid: number; usage: Usage; user: Usage; limits: Quotas }
const zero = (): Usage => ({ connections: 0, listeners: 0, watches: 0, callsInFlight: 0, queuedBytes: 0, shmBytes: 0 });

/**
 * Each user's usage, by uid; one user at its quota takes nothing from another. `take` answers
 * before anything is allocated (the caller then answers ELIMIT); `give` returns it. Without a
 * policy the limits are Infinity and only the figures are kept. A connection's own holdings are
 * tracked too, so that its close gives back exactly what it held.
 */
export class UserQuotas {
  private readonly users = new Map<number, Usage>();
  private readonly held = new Set<Holder>();
  /** Accepts of the last second, per uid (connectionsPerSecond). */
  private readonly recent = new Map<number, number[]>();
  readonly refused = new Map<number, number>();

  constructor(
    private readonly identity: (h: Holder) => Identity,
    private readonly limits: (who: Identity) => Quotas,
  ) {}

  /** A new connection of `h`'s user: false (counted) past `connections` or `connectionsPerSecond`. */
  connect(h: Holder, now = Date.now()): boolean {
    const who = this.identity(h);
    const q = this.limits(who);
    const times = (this.recent.get(who.uid) ?? []).filter((t) => t > now - 1000);
    if (times.length >= q.connectionsPerSecond || this.usage(who.uid).connections >= q.connections) {
      this.refuse(who.uid);
      this.recent.set(who.uid, times);
      return false;
    }
    times.push(now);
    this.recent.set(who.uid, times);
    h.quotaEntry = { uid: who.uid, usage: zero(), user: this.usage(who.uid), limits: q };
    this.held.add(h);
    this.add(h, 'connections', 1);
    return true;
  }

  /** The policy changed: every connection's limits are read again. */
  refreshLimits(): void {
    for (const h of this.held) h.quotaEntry!.limits = this.limits(this.identity(h));
  }

  /** Takes `n` of `key` for `h`'s user; false (counted, nothing taken) past its quota. */
  take(h: Holder, key: Exclude<QuotaKey, 'connections' | 'connectionsPerSecond'>, n = 1): boolean {
    const entry = h.quotaEntry;
    if (!entry) return true; // not accounted (refused or already closed): the caller's own limits apply
    if (entry.user[key] + n > entry.limits[key]) {
      this.refuse(entry.uid);
      return false;
    }
    this.add(h, key, n);
    return true;
  }

  /** Gives back `n` of `key`. */
  give(h: Holder, key: Exclude<QuotaKey, 'connectionsPerSecond'>, n = 1): void {
    if (h.quotaEntry) this.add(h, key, -n);
  }

  /** Moves `delta` queued bytes (positive or negative) onto `h`'s user, without a check (queues are checked by `queueFits`). */
  queued(h: Holder, delta: number): void {
    const e = h.quotaEntry;
    if (!e) return;
    e.usage.queuedBytes += delta;
    e.user.queuedBytes += delta;
  }

  /** True while `h`'s user has room for `bytes` more queued towards it. */
  queueFits(h: Holder, bytes: number): boolean {
    const e = h.quotaEntry;
    return !e || e.user.queuedBytes + bytes <= e.limits.queuedBytes;
  }

  /** The connection closed: everything it still held goes back to its user. */
  disconnect(h: Holder): void {
    const entry = h.quotaEntry;
    if (!entry) return;
    h.quotaEntry = null;
    this.held.delete(h);
    const u = entry.user;
    for (const k of Object.keys(u) as Array<keyof Usage>) u[k] -= entry.usage[k];
    if (u.connections <= 0) this.users.delete(entry.uid);
  }

  /** Per user: usage, and limits where there are any (`qcop stats` → `users`). */
  stats(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [uid, u] of this.users) {
      const limits: Record<string, number> = {};
      const who = [...this.held].find((h) => h.quotaEntry!.uid === uid);
      if (who) for (const [k, v] of Object.entries(who.quotaEntry!.limits)) if (Number.isFinite(v)) limits[k] = v;
      out[String(uid)] = { ...u, ...(Object.keys(limits).length ? { limits } : {}), refused: this.refused.get(uid) ?? 0 };
    }
    return out;
  }

  private usage(uid: number): Usage {
    let u = this.users.get(uid);
    if (!u) this.users.set(uid, (u = zero()));
    return u;
  }

  private add(h: Holder, key: keyof Usage, n: number): void {
    const entry = h.quotaEntry!;
    entry.usage[key] += n;
    entry.user[key] += n;
  }

  private refuse(uid: number): void {
    this.refused.set(uid, (this.refused.get(uid) ?? 0) + 1);
  }
}
