// The bridge's bounded memory for exports (SPEC §11): waiting while the server is away, and published but not yet acknowledged.

/** One exported message, ready to publish. */
export interface Outgoing {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
  message: string;
  /** Bytes it holds here (payload, names, bookkeeping). */
  size: number;
  /** Already counted in the buffer's bytes (it waited here before being published). */
  counted?: boolean;
}

/**
 * Counts the bytes of messages waiting for the server and of messages handed to MQTT.js that its
 * callback has not released yet (QoS 1: until PUBACK, kept by MQTT.js across a reconnection;
 * QoS 0: until written). Past `maxBytes` a message is refused; the bridge counts it as dropped.
 * One message is always admitted when nothing is held, whatever its size.
 */
export class OfflineBuffer {
  private queue: Outgoing[] = [];
  bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get empty(): boolean {
    return this.queue.length === 0;
  }

  /** Messages waiting for the server. */
  get count(): number {
    return this.queue.length;
  }

  private fits(size: number): boolean {
    return this.bytes === 0 || this.bytes + size <= this.maxBytes;
  }

  /** Keeps `m` until the server is back; false when it does not fit. */
  add(m: Outgoing): boolean {
    if (!this.fits(m.size)) return false;
    this.bytes += m.size;
    m.counted = true;
    this.queue.push(m);
    return true;
  }

  /** Everything waiting, oldest first; their bytes stay counted until released. */
  takeAll(): Outgoing[] {
    const all = this.queue;
    this.queue = [];
    return all;
  }

  /** Counts `m` as handed to MQTT.js; false when it does not fit. */
  admit(m: Outgoing): boolean {
    if (m.counted) return true;
    if (!this.fits(m.size)) return false;
    this.bytes += m.size;
    m.counted = true;
    return true;
  }

  /** MQTT.js is done with `m` (acknowledged, written, or failed). */
  release(m: Outgoing): void {
    if (!m.counted) return;
    m.counted = false;
    this.bytes -= m.size;
  }
}
