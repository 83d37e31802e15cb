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

/** Call ids are the broker's own, so a reply can only answer a call it was asked. */
export class CallTable<C> {
  private next = 1;
  private wrapped = false;
  private readonly pending = new Map<number, Call<C>>();

  constructor(private readonly onExpire: (call: Call<C>) => void) {}

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
        this.pending.delete(id);
        this.onExpire(call);
      }, timeoutMs),
    };
    call.timer.unref?.();
    this.pending.set(id, call);
    return call;
  }

  /** Classifies a reply by `conn` to `callId`. */
  reply(conn: C, callId: number): ReplyVerdict<C> {
    const call = this.pending.get(callId);
    if (!call) return callId !== 0 && this.issued(callId) ? 'late' : 'unknown';
    if (!call.receivers.has(conn)) return 'unknown';
    if (!call.waiting.delete(conn)) return 'late';
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
    call.waiting.delete(conn);
    if (call.waiting.size === 0) {
      this.finish(call);
      return !call.answered;
    }
    return false;
  }

  /** Forgets `conn`: calls it made are dropped; calls it was asked lose a receiver. Returns calls now left unanswerable. */
  dropConnection(conn: C): Call<C>[] {
    const orphaned: Call<C>[] = [];
    for (const call of [...this.pending.values()]) {
      if (call.caller === conn) {
        this.finish(call);
      } else if (call.waiting.has(conn) && this.giveUp(call, conn)) {
        orphaned.push(call);
      }
    }
    return orphaned;
  }

  clear(): void {
    for (const call of this.pending.values()) clearTimeout(call.timer);
    this.pending.clear();
  }

  get size(): number {
    return this.pending.size;
  }

  private finish(call: Call<C>): void {
    clearTimeout(call.timer);
    this.pending.delete(call.id);
  }

  private issued(callId: number): boolean {
    return this.wrapped || callId < this.next;
  }
}
