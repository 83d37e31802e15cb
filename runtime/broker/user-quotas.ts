// SPEC §9 quotas: what each user holds, all its connections together, against its limits (dbus-broker style accounting).
import type { Identity, QuotaKey, Quotas } from './acl/policy.js';

/** A connection, as the accounting sees it: who it is, and what it holds. */
export interface Holder {
  readonly id: number;
}

type Usage = Record<Exclude<QuotaKey, 'connectionsPerSecond'>, number>;
const zero = (): Usage => ({ connections: 0, listeners: 0, watches: 0, callsInFlight: 0, queuedBytes: 0, shmBytes: 0 });

/**
 * Each user's usage, by uid; one user at its quota takes nothing from another. `take` answers
 * before anything is allocated (the caller then answers ELIMIT); `give` returns it. Without a
 * policy the limits are Infinity and only the figures are kept. A connection's own holdings are
 * tracked too, so that its close gives back exactly what it held.
 */
export class UserQuotas {
  private readonly users = new Map<number, Usage>();
  private readonly held = new Map<Holder, { uid: number; usage: Usage }>();
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
    this.held.set(h, { uid: who.uid, usage: zero() });
    this.add(h, 'connections', 1);
    return true;
  }

  /** Takes `n` of `key` for `h`'s user; false (counted, nothing taken) past its quota. */
  take(h: Holder, key: Exclude<QuotaKey, 'connections' | 'connectionsPerSecond'>, n = 1): boolean {
    const entry = this.held.get(h);
    if (!entry) return true; // not accounted (refused or already closed): the caller's own limits apply
    const q = this.limits(this.identity(h))[key];
    if (this.usage(entry.uid)[key] + n > q) {
      this.refuse(entry.uid);
      return false;
    }
    this.add(h, key, n);
    return true;
  }

  /** Gives back `n` of `key`. */
  give(h: Holder, key: Exclude<QuotaKey, 'connectionsPerSecond'>, n = 1): void {
    if (this.held.has(h)) this.add(h, key, -n);
  }

  /** Moves `delta` queued bytes (positive or negative) onto `h`'s user, without a check (queues are checked by `queueFits`). */
  queued(h: Holder, delta: number): void {
    if (this.held.has(h)) this.add(h, 'queuedBytes', delta);
  }

  /** True while `h`'s user has room for `bytes` more queued towards it. */
  queueFits(h: Holder, bytes: number): boolean {
    const entry = this.held.get(h);
    if (!entry) return true;
    return this.usage(entry.uid).queuedBytes + bytes <= this.limits(this.identity(h)).queuedBytes;
  }

  /** The connection closed: everything it still held goes back to its user. */
  disconnect(h: Holder): void {
    const entry = this.held.get(h);
    if (!entry) return;
    this.held.delete(h);
    const u = this.usage(entry.uid);
    for (const k of Object.keys(u) as Array<keyof Usage>) u[k] -= entry.usage[k];
    if (u.connections <= 0) this.users.delete(entry.uid);
  }

  /** Per user: usage, and limits where there are any (`qcop stats` → `users`). */
  stats(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [uid, u] of this.users) {
      const limits: Record<string, number> = {};
      const who = [...this.held].find(([, e]) => e.uid === uid)?.[0];
      if (who) for (const [k, v] of Object.entries(this.limits(this.identity(who)))) if (Number.isFinite(v)) limits[k] = v;
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
    const entry = this.held.get(h)!;
    entry.usage[key] += n;
    this.usage(entry.uid)[key] += n;
  }

  private refuse(uid: number): void {
    this.refused.set(uid, (this.refused.get(uid) ?? 0) + 1);
  }
}
