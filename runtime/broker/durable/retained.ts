// Retained values (SPEC §10): the last message sent with `retain` per channel, given first to new listeners.
import { QcopError } from '../../protocol/errors.js';
import { Pattern } from '../../protocol/pattern.js';
import { isPattern } from '../../protocol/names.js';
import type { Store } from './store.js';

export interface RetainedValue {
  channel: string;
  message: string;
  data: Buffer;
}

/** Retained values: those of queued channels live in the store (durable), the others in memory, as long as the broker. */
export class RetainedValues {
  private readonly mem = new Map<string, { message: string; data: Buffer }>();
  private memBytes = 0;

  constructor(private readonly store: Store | null, private readonly maxRetainedBytes: number) {}

  /** Keeps (or, with empty data, clears) `channel`'s value. Throws ENOBUFS past maxRetainedBytes, ENOSPC on a full disk. */
  set(channel: string, message: string, data: Buffer, queued: boolean): void {
    if (queued && this.store) {
      const old = this.store.retained.get(channel);
      const size = channel.length + message.length + data.length;
      if (data.length > 0 && this.bytes - (old ? channel.length + old.message.length + old.data.length : 0) + size > this.maxRetainedBytes) this.full();
      this.store.retain(channel, message, data);
      return;
    }
    const old = this.mem.get(channel);
    const oldSize = old ? channel.length + old.message.length + old.data.length : 0;
    if (data.length === 0) {
      if (old) {
        this.mem.delete(channel);
        this.memBytes -= oldSize;
      }
      return;
    }
    const size = channel.length + message.length + data.length;
    if (this.bytes - oldSize + size > this.maxRetainedBytes) this.full();
    this.mem.set(channel, { message, data: Buffer.from(data) });
    this.memBytes += size - oldSize;
  }

  /** The values a new listener on `name` (a channel or a pattern) gets first. */
  forListener(name: string): RetainedValue[] {
    const out: RetainedValue[] = [];
    const p = isPattern(name) ? new Pattern(name) : null;
    const take = (channel: string, v: { message: string; data: Buffer }) => {
      if (p ? p.matches(channel) : channel === name) out.push({ channel, message: v.message, data: v.data });
    };
    if (!p) {
      const v = this.mem.get(name) ?? this.store?.retained.get(name);
      if (v) take(name, v);
      return out;
    }
    for (const [ch, v] of this.mem) take(ch, v);
    if (this.store) for (const [ch, v] of this.store.retained) take(ch, v);
    return out;
  }

  get count(): number {
    return this.mem.size + (this.store?.retained.size ?? 0);
  }

  get bytes(): number {
    let n = this.memBytes;
    if (this.store) for (const [ch, v] of this.store.retained) n += ch.length + v.message.length + v.data.length;
    return n;
  }

  private full(): never {
    throw new QcopError('ENOBUFS', `retained values would exceed maxRetainedBytes (${this.maxRetainedBytes})`);
  }
}
