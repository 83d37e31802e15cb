// One direction of a link: messages taken from one client are sent on through another, with backpressure end to end (SPEC §2).
import { QcopError, type Client } from '../../runtime/index.js';

/** The most one read hands over before a hold takes effect (the in-process pair's piece, a socket read). */
export const ONE_READ = 64 * 1024;

/** A message taken from one side, to be sent on the other. */
export interface Relayed {
  channel: string;
  message: string;
  data: unknown;
  /** Bytes it holds here (data, names). */
  size: number;
}

/**
 * When the sending side says "wait" (`send()` false, or not connected), the receiving side stops
 * taking messages from its broker (`holdIncoming`): that broker then holds back whoever fills this
 * link's queue, exactly as for a slow local receiver, and only after its stallMs treats the link
 * as stuck — counted and told, never silent (SPEC §2). What arrived after the hold began waits
 * here in order: at most one read (ONE_READ) past `maxBytes`; past that a message is counted lost.
 * The sending side's 'drain' (or its first connection) sends the waiting ones, then lets go.
 */
export class Relay {
  private readonly waiting: Relayed[] = [];
  private waitingBytes = 0;
  private held = false;
  /** Messages sent on; messages lost here (past `maxBytes`, or refused by the sending side). */
  sent = 0;
  lost = 0;

  /**
   * `from()` is the client messages are taken from (its incoming is held), `to()` the client they
   * are sent through; either may be null while not connected yet.
   */
  constructor(private readonly from: () => Client | null, private readonly to: () => Client | null, private readonly maxBytes: number) {}

  /** Bytes waiting here. */
  get bytes(): number {
    return this.waitingBytes;
  }

  pass(m: Relayed): void {
    if (this.waiting.length > 0 || this.held) return this.keep(m);
    const to = this.to();
    if (!to) {
      this.keep(m);
      return this.hold(true);
    }
    this.send(to, m);
  }

  /** The sending side can take more ('drain', connected, reconnected): sends what waits, in order. */
  resume(): void {
    const to = this.to();
    if (!to) return;
    this.held = false;
    while (this.waiting.length > 0 && !this.held) {
      const m = this.waiting.shift()!;
      this.waitingBytes -= m.size;
      this.send(to, m);
    }
    if (!this.held) this.hold(false);
  }

  private send(to: Client, m: Relayed): void {
    try {
      if (!to.send(m.channel, m.message, m.data)) this.hold(true);
      this.sent++;
    } catch (err) {
      if ((err as QcopError).code !== 'ENOBUFS') throw err;
      // Disconnected with its backlog full: this one waits here, and the source is held.
      this.keep(m);
      this.hold(true);
    }
  }

  private keep(m: Relayed): void {
    if (this.waitingBytes + m.size > this.maxBytes + ONE_READ && this.waiting.length > 0) {
      this.lost++;
      return;
    }
    this.waiting.push(m);
    this.waitingBytes += m.size;
  }

  private hold(on: boolean): void {
    this.held = on;
    this.from()?.holdIncoming(on);
  }
}
