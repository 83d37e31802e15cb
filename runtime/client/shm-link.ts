// The client's side of large messages by descriptor: whether shm is usable, the pool, descriptors in and out (PROTOCOL 8).
import { BASE_FEATURES, DEFAULT_MAX_POOL_BYTES, DEFAULT_SHM_THRESHOLD, HEADER_SIZE } from '../protocol/constants.js';
import { decodeMsgDescriptor, encodeSendDescriptor, type MsgDescriptor } from '../protocol/shm-descriptor.js';
import { QcopError } from '../protocol/errors.js';
import { loadNative } from '../native/index.js';
import { SendPool, ViewCache, type Slot } from './pool.js';

/** Options of the shm path, part of ClientOptions. */
export interface ShmOptions {
  /** Use the shared-memory pool for large data when the broker is local (default true). */
  shm?: boolean;
  /** Data above this many bytes go through the pool (default: the broker's, 64 KiB). */
  shmThreshold?: number;
  /** Largest pool this client creates (default: the broker's limit, 128 MiB). */
  maxPoolBytes?: number;
}

/** Decides per connection whether data go by descriptor, and owns the sender's pool and the receiver's mappings. */
export class ShmLink {
  readonly pool: SendPool;
  readonly views = new ViewCache();
  private offered = false;
  private accepted = false;
  private broken: string | null = null;
  private threshold = DEFAULT_SHM_THRESHOLD;

  constructor(
    private readonly local: boolean,
    private readonly opts: ShmOptions,
    announce: (index: number, key: string) => void,
    retire: (index: number) => void,
  ) {
    for (const key of ['shmThreshold', 'maxPoolBytes'] as const) {
      const v = opts[key];
      if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw new QcopError('EINVAL', `${key} must be a non-negative integer`);
    }
    this.pool = new SendPool(announce, retire);
  }

  /** Features for Hello: `shm` only when this process can map memory and the broker is on this host. */
  helloFeatures(): string[] {
    this.offered = this.opts.shm !== false && this.local && this.reason() === null;
    return this.offered ? [...BASE_FEATURES, 'shm'] : [...BASE_FEATURES];
  }

  /** Takes the broker's answer (PROTOCOL 8.1): shm is on when both sides offered it. */
  welcome(limits: Record<string, unknown>): void {
    const features = Array.isArray(limits.features) ? limits.features : [];
    this.accepted = this.offered && features.includes('shm');
    this.threshold = this.opts.shmThreshold ?? Number(limits.shmThreshold ?? DEFAULT_SHM_THRESHOLD);
    const brokerMax = Number(limits.maxPoolBytes ?? DEFAULT_MAX_POOL_BYTES);
    this.pool.maxPoolBytes = Math.min(this.opts.maxPoolBytes ?? brokerMax, brokerMax);
    this.pool.group = typeof limits.shmGroup === 'number' ? limits.shmGroup : undefined;
  }

  /** True when `bytes` of data should travel by descriptor on this connection. */
  wants(bytes: number): boolean {
    return this.accepted && this.broken === null && bytes > this.threshold;
  }

  /** True when data may go by descriptor (on the current connection, or the last one while disconnected). */
  get active(): boolean {
    return this.accepted && this.broken === null;
  }

  /** Largest data one message may carry through the pool: a quarter of it (PROTOCOL 8.5). */
  get capacity(): number {
    return Math.floor(this.pool.maxPoolBytes / 4);
  }

  /** Why data cannot go through shared memory here, for EMSGSIZE messages; null when they can. */
  whyNot(): string | null {
    if (this.opts.shm === false) return 'this client was created with shm: false';
    if (!this.local) return 'the broker is not on this host (remote transport)';
    const r = this.reason();
    if (r) return r;
    if (this.broken) return this.broken;
    if (!this.accepted && this.offered) return 'the broker does not offer shared memory';
    return null;
  }

  /**
   * EMSGSIZE for a frame of `size` bytes above the broker's `max`, saying why the pool cannot take
   * it (`inlineOnly`: not a plain send, which alone may use the pool).
   */
  checkFrame(inlineOnly: boolean, size: number, max: number): void {
    if (size <= max) return;
    const why = this.whyNot();
    const tail = inlineOnly
      ? 'only send() carries data through shared memory'
      : why ? `larger data travel through shared memory, unavailable here: ${why}` : `it is larger than a quarter of this client's pool (maxPoolBytes ${this.capacity * 4})`;
    throw new QcopError('EMSGSIZE', `a ${size}-byte frame exceeds the broker's limit of ${max} bytes; ${tail} (docs/SHM.md)`);
  }

  /** EMSGSIZE, before anything is allocated, for `bytes` of data that no send() can carry (pool or frame). */
  checkData(bytes: number, maxFrame: number): void {
    if (this.active && bytes + 5 <= this.capacity) return;
    this.checkFrame(false, HEADER_SIZE + 5 + bytes, maxFrame);
  }

  /** Stops using shm on this connection after a failure (the pool could not be created or announced). */
  fail(why: string): void {
    this.broken = why;
  }

  /** The 16 bytes of a Send|Shm (PROTOCOL 8.3). */
  sendDescriptor(slot: Slot): Buffer {
    return encodeSendDescriptor({ slot: slot.id, segment: slot.segment, offset: slot.offset, length: slot.length });
  }

  /** Reads a Msg|Shm payload; null when it is malformed. */
  parse(payload: Buffer): MsgDescriptor | null {
    return decodeMsgDescriptor(payload);
  }

  /** The broker went away: a new one gets a fresh pool (PROTOCOL 8.7). */
  disconnected(): void {
    // `accepted` stays: large sends made while disconnected wait as data for the next broker.
    this.pool.reset();
    this.broken = null;
  }

  /** Lets go of the pool and every mapping. */
  close(): void {
    this.pool.reset();
    this.views.close();
  }

  private reason(): string | null {
    try {
      loadNative();
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }
}
