// Requests waiting for their answers, by id (PROTOCOL 3.1): the one table of them, and what a reconnection does to them.
import { HEADER_SIZE, KIND_NAMES, Kind } from '../protocol/constants.js';
import { QcopError } from '../protocol/errors.js';
import { payloadOf, type Frame } from '../protocol/frame.js';
import { decodeName } from '../protocol/names.js';

export interface Pending {
  kind: Kind;
  channel: string;
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
  /** Safe to send again after a reconnection (flush, query, stats, listen, watch). */
  idempotent: boolean;
  frame: Buffer;
  /** Written to a connection (as opposed to waiting in the backlog). */
  inFlight: boolean;
  onSettle?: () => void;
}

export class Requests {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  newId(): number {
    const id = this.nextId;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  add(id: number, p: Pending): void {
    this.pending.set(id, p);
  }

  /** True while `p` still waits (its id, in its frame, was not answered, given up or reused). */
  waiting(p: Pending): boolean {
    return this.pending.get(p.frame.readUInt32LE(8)) === p;
  }

  /** Request `id` is given up: its answer, if one comes, is ignored. */
  forget(id: number): void {
    const p = this.pending.get(id);
    this.pending.delete(id);
    p?.onSettle?.();
  }

  /** A result or error frame settles its request; an error no request waits for is returned. */
  answer(f: Frame): QcopError | null {
    const p = this.pending.get(f.id);
    if (f.kind === Kind.Error) {
      const code = decodeName(f.raw, f.channelEnd, f.messageEnd) || 'EPROTO';
      const text = payloadOf(f).toString('utf8');
      const channel = decodeName(f.raw, HEADER_SIZE, f.channelEnd) || p?.channel || undefined;
      const kind = KIND_NAMES[p?.kind ?? f.aux] ?? 'unknown';
      const err = QcopError.fromWire(code, text, { request: { kind, ...(channel ? { channel } : {}) } });
      if (!p) return err;
      this.forget(f.id);
      p.reject(err);
      return null;
    }
    if (!p) return null; // answer to a request that timed out meanwhile
    this.forget(f.id);
    p.resolve(f);
    return null;
  }

  /** Rejects with ECLOSED, saying `why`, every request `which` picks. */
  fail(which: (p: Pending) => boolean, why: string): void {
    for (const [id, p] of [...this.pending]) {
      if (!which(p)) continue;
      this.forget(id);
      p.reject(new QcopError('ECLOSED', why, { request: { kind: KIND_NAMES[p.kind] ?? 'unknown', channel: p.channel || undefined } }));
    }
  }

  /**
   * After a reconnection: requests the client redoes itself (listen, watch, monitor) are dropped; the others
   * already written are returned, to be sent again.
   */
  takeResend(): Pending[] {
    const resend: Pending[] = [];
    for (const [id, p] of [...this.pending]) {
      if (p.kind === Kind.Listen || p.kind === Kind.Watch || p.kind === Kind.Unwatch || p.kind === Kind.Monitor) this.pending.delete(id);
      else if (p.inFlight) resend.push(p);
    }
    return resend;
  }
}
