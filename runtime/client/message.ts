// A message as a listener receives it: channel, message, lazily decoded data, and reply/fail for calls.
import { decodeData } from '../protocol/data.js';
import { QcopError } from '../protocol/errors.js';

/** How a received call answers through the client that received it. */
export interface CallAnswerer {
  answer(callId: number, kind: 'reply' | 'fail' | 'decline', value?: unknown, code?: string, text?: string): void;
}

/** One received message, handed to every matching listener of the process (SPEC §2). */
export class ReceivedMessage {
  /** The concrete channel the message was sent on (also for pattern listeners). */
  readonly channel: string;
  /** The message name, e.g. `setVolume(int)`. */
  readonly message: string;
  /** Answers a call with a value; present only on calls. Only the first answer of a process counts. */
  readonly reply?: (value?: unknown) => void;
  /** Answers a call with an error code (`E` + capitals) and text; present only on calls. */
  readonly fail?: (code: string, text?: string) => void;
  /** Tells the caller this process will not answer; present only on calls. */
  readonly decline?: () => void;
  /** SPEC §10: delivered before on a queued channel without being acknowledged (its handler never finished). */
  redelivered = false;
  /** SPEC §10: the channel's retained value, given to this new listener first. */
  retained = false;
  private payload: Buffer;
  private decoded = false;
  private value: unknown;
  private answeredFlag = false;
  // PROTOCOL 8.4: a message in a sender's pool slot; the slot is released once the handlers returned and every hold() ended.
  private slot: { release: () => void; holds: number; dispatching: boolean } | null = null;
  private readonly sharedFlag: boolean;
  // docs/SHM.md §10: false once the sender shrank its segment under the slot; the error thrown then, once made.
  private readonly intact?: () => boolean;
  private fault: QcopError | null = null;

  constructor(channel: string, message: string, payload: Buffer, call?: { id: number; via: CallAnswerer }, release?: () => void, intact?: () => boolean) {
    this.channel = channel;
    this.message = message;
    this.payload = payload;
    this.sharedFlag = release !== undefined;
    if (intact) this.intact = intact;
    if (release) this.slot = { release, holds: 0, dispatching: true };
    if (call) {
      const once = (kind: 'reply' | 'fail' | 'decline', value?: unknown, code?: string, text?: string) => {
        if (this.answeredFlag) return;
        this.answeredFlag = true;
        call.via.answer(call.id, kind, value, code, text);
      };
      this.reply = (value?: unknown) => once('reply', value);
      this.fail = (code: string, text = '') => once('fail', undefined, code, text);
      this.decline = () => once('decline');
    }
  }

  /**
   * The decoded data (`undefined` when the message has none). Decoded once, on first access.
   * For a message that came through shared memory (`shared`) it is zero copy: a `Buffer` in it
   * is a view of the sender's pool slot, valid only while the handlers run or a `hold()` lasts.
   * Keep such data longer with `copyData()`, or copy the `Buffer` (`Buffer.from(b)`).
   * Throws EBADSLOT when the sender shrank its segment under the slot (the message is lost, and
   * counted as such): zeros are never handed over as data.
   */
  get data(): unknown {
    if (!this.decoded) {
      this.checkReadable('data');
      let value: unknown;
      try {
        value = decodeData(this.payload);
      } finally {
        this.checkIntact(); // after decoding: a fault during it is seen here
      }
      this.value = value;
      this.decoded = true;
    }
    return this.value;
  }

  /**
   * The data decoded from a private copy of the bytes: for a shared-memory message, data that
   * stay valid after the handler returned (read it in the handler or during a `hold()`). For
   * any other message it is `data`, which is always the receiver's own.
   */
  copyData(): unknown {
    if (!this.sharedFlag) return this.data;
    this.checkReadable('copyData()');
    try {
      return decodeData(this.payload, true);
    } finally {
      this.checkIntact();
    }
  }

  /**
   * The data exactly as the sender encoded it (CBOR bytes; empty when there is no data). For a
   * message through shared memory this is a zero-copy view of the sender's pool, valid only while
   * the handlers run or a `hold()` lasts; copy it (`Buffer.from(msg.bytes)`) to keep it longer.
   */
  get bytes(): Buffer {
    this.checkReadable('bytes');
    this.checkIntact();
    return this.payload;
  }

  /** True when the data came through the sender's shared-memory pool (PROTOCOL 8). */
  get shared(): boolean {
    return this.sharedFlag;
  }

  /**
   * Keeps a shared-memory message readable after the handler returned (for async work); call the
   * returned function once when done. For other messages it does nothing.
   */
  hold(): () => void {
    const slot = this.slot;
    if (!slot) return () => {};
    slot.holds++;
    let once = false;
    return () => {
      if (once) return;
      once = true;
      slot.holds--;
      this.maybeRelease();
    };
  }

  /** @internal The client calls this once every listener's handler returned. */
  dispatched(): void {
    if (!this.slot) return;
    this.slot.dispatching = false;
    this.maybeRelease();
  }

  private maybeRelease(): void {
    const slot = this.slot;
    if (!slot || slot.dispatching || slot.holds > 0) return;
    this.slot = null;
    this.payload = Buffer.alloc(0);
    slot.release();
  }

  /** @internal True when `e` is the EBADSLOT this message threw because its slot was shrunk away. */
  isFault(e: unknown): boolean {
    return e !== null && e === this.fault;
  }

  private checkIntact(): void {
    if (this.fault) throw this.fault;
    if (!this.intact || this.intact()) return;
    this.fault = new QcopError('EBADSLOT', `the sender shrank its shared-memory segment under this message on ${this.channel}: its data are lost`);
    throw this.fault;
  }

  private checkReadable(what: string): void {
    if (this.sharedFlag && this.slot === null) {
      throw new QcopError('ECLOSED', `msg.${what} of a shared-memory message read after its handler returned; read it in the handler or use msg.hold()`);
    }
  }

  /** True when this message is a call that expects a reply. */
  get isCall(): boolean {
    return this.reply !== undefined;
  }

  /** True once this process answered the call. */
  get answered(): boolean {
    return this.answeredFlag;
  }
}
