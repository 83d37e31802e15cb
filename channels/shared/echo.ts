// Echo suppression for links: recognise a link's own re-sent message when its broker hands it back.
import { createHash } from 'node:crypto';

/** Identifies a message by channel name, message name and data bytes. */
export function fingerprint(channel: string, message: string, bytes: Uint8Array): string {
  const data = bytes.length <= 48 ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64') : createHash('sha1').update(bytes).digest('base64');
  return `${channel}\0${message}\0${bytes.length}\0${data}`;
}

/**
 * A link that re-sends a message on a broker where it also listens receives that message back.
 * Before re-sending it calls `expect()`; its listener calls `take()` and drops what matches.
 *
 * Expectations are forgotten once a `flush()` issued after the send resolves: by then the broker
 * routed the send and handed this process every copy addressed to it (SPEC §2 flush), so an
 * expectation can never swallow a message that arrives later. Identical messages from another
 * sender in that window are indistinguishable by content; the filter then drops one of the two
 * identical copies, which is the same as delivering the other.
 */
export class EchoFilter {
  private readonly expected = new Map<string, number[]>();
  private generation = 0;
  private flushing = false;
  private again = false;
  suppressed = 0;

  /** `flush` is the client's flush (it must resolve only after earlier sends were routed). */
  constructor(private readonly flush: () => Promise<unknown>) {}

  /** Number of echoes still expected. */
  get pending(): number {
    let n = 0;
    for (const g of this.expected.values()) n += g.length;
    return n;
  }

  expect(fp: string): void {
    const list = this.expected.get(fp);
    if (list) list.push(this.generation);
    else this.expected.set(fp, [this.generation]);
    this.scheduleFlush();
  }

  /** True (and forgets it) when `fp` is an expected echo. */
  take(fp: string): boolean {
    const list = this.expected.get(fp);
    if (!list) return false;
    list.shift();
    if (list.length === 0) this.expected.delete(fp);
    this.suppressed++;
    return true;
  }

  clear(): void {
    this.expected.clear();
  }

  private scheduleFlush(): void {
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    const upTo = this.generation++;
    this.flush().then(
      () => this.expire(upTo),
      () => this.clear(),
    ).finally(() => {
      this.flushing = false;
      if (this.again) {
        this.again = false;
        this.scheduleFlush();
      }
    });
  }

  private expire(upTo: number): void {
    for (const [fp, gens] of this.expected) {
      while (gens.length > 0 && gens[0]! <= upTo) gens.shift();
      if (gens.length === 0) this.expected.delete(fp);
    }
  }
}
