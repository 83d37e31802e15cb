// Calls in flight: who asked, who was asked, who has not answered yet (SPEC §2 request/reply).

export interface Call<C> {
  id: number;
  caller: C;
  requestId: number;
  channel: string;
  receivers: Set<C>;
  waiting: Set<C>;
  answered: boolean;
  timer: NodeJS.Timeout;
}

export type ReplyVerdict<C> = { call: Call<C>; first: boolean } | 'late' | 'unknown';

/**
 * Call ids are the broker's own, so a reply can only answer a call it was asked. Calls are
 * indexed by caller and by waiting receiver, so a connection's limit is one lookup and a
 * connection going away costs its own calls, not a scan of every call on the broker.
 */
export class CallTable<C> {
  private next = 1;
  private wrapped = false;
  private readonly pending = new Map<number, Call<C>>();
  private readonly byCaller = new Map<C, Set<Call<C>>>();
  private readonly byReceiver = new Map<C, Set<Call<C>>>();

  constructor(
    private readonly onExpire: (call: Call<C>) => void,
    /** Every call ends here once, however it ends (answered, declined, expired, its caller gone). */
    private readonly onFinish: (call: Call<C>) => void = () => {},
  ) {}

  start(caller: C, requestId: number, channel: string, receivers: Iterable<C>, timeoutMs: number): Call<C> {
    const id = this.next;
    if (this.next >= 0xffffffff) {
      this.next = 1;
      this.wrapped = true;
    } else {
      this.next++;
    }
    const call: Call<C> = {
      id,
      caller,
      requestId,
      channel,
      receivers: new Set(receivers),
      waiting: new Set(receivers),
      answered: false,
      timer: setTimeout(() => {
        this.finish(call);
        this.onExpire(call);
      }, timeoutMs),
    };
    call.timer.unref?.();
    this.pending.set(id, call);
    index(this.byCaller, caller, call);
    for (const r of call.waiting) index(this.byReceiver, r, call);
    return call;
  }

  /** Calls `caller` has in flight (PROTOCOL 6.1 `maxCallsInFlight`). */
  inFlight(caller: C): number {
    return this.byCaller.get(caller)?.size ?? 0;
  }

  /** Classifies a reply by `conn` to `callId`. */
  reply(conn: C, callId: number): ReplyVerdict<C> {
    const call = this.pending.get(callId);
    if (!call) return callId !== 0 && this.issued(callId) ? 'late' : 'unknown';
    if (!call.receivers.has(conn)) return 'unknown';
    if (!this.stopWaiting(call, conn)) return 'late';
    const first = !call.answered;
    call.answered = true;
    if (call.waiting.size === 0) this.finish(call);
    return { call, first };
  }

  /** A receiver declines: returns the call when that leaves it unanswerable. */
  decline(conn: C, callId: number): Call<C> | null {
    const call = this.pending.get(callId);
    if (!call || !call.waiting.has(conn)) return null;
    return this.giveUp(call, conn) ? call : null;
  }

  /** Removes a receiver that will never answer; returns the call if nobody is left to answer it. */
  giveUp(call: Call<C>, conn: C): boolean {
    // A call already finished (answered, expired or reported) must not be reported twice.
    if (!this.pending.has(call.id)) return false;
    this.stopWaiting(call, conn);
    if (call.waiting.size === 0) {
      this.finish(call);
      return !call.answered;
    }
    return false;
  }

  /** Forgets `conn`: calls it made are dropped; calls it was asked lose a receiver. Returns calls now left unanswerable. */
  dropConnection(conn: C): Call<C>[] {
    for (const call of [...(this.byCaller.get(conn) ?? [])]) this.finish(call);
    const orphaned: Call<C>[] = [];
    for (const call of [...(this.byReceiver.get(conn) ?? [])]) {
      if (this.giveUp(call, conn)) orphaned.push(call);
    }
    this.byReceiver.delete(conn);
    return orphaned;
  }

  clear(): void {
    for (const call of this.pending.values()) clearTimeout(call.timer);
    this.pending.clear();
    this.byCaller.clear();
    this.byReceiver.clear();
  }

  get size(): number {
    return this.pending.size;
  }

  private stopWaiting(call: Call<C>, conn: C): boolean {
    if (!call.waiting.delete(conn)) return false;
    unindex(this.byReceiver, conn, call);
    return true;
  }

  private finish(call: Call<C>): void {
    if (!this.pending.delete(call.id)) return;
    clearTimeout(call.timer);
    unindex(this.byCaller, call.caller, call);
    for (const r of call.waiting) unindex(this.byReceiver, r, call);
    this.onFinish(call);
  }

  private issued(callId: number): boolean {
    return this.wrapped || callId < this.next;
  }
}

function index<C>(map: Map<C, Set<Call<C>>>, key: C, call: Call<C>): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(call);
}

function unindex<C>(map: Map<C, Set<Call<C>>>, key: C, call: Call<C>): void {
  const set = map.get(key);
  if (set?.delete(call) && set.size === 0) map.delete(key);
}
