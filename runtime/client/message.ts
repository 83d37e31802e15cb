// A message as a listener receives it: channel, message, lazily decoded data, and reply/fail for calls.
import { decodeData } from '../protocol/data.js';

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
  private readonly payload: Buffer;
  private decoded = false;
  private value: unknown;
  private answeredFlag = false;

  constructor(channel: string, message: string, payload: Buffer, call?: { id: number; via: CallAnswerer }) {
    this.channel = channel;
    this.message = message;
    this.payload = payload;
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

  /** The decoded data (`undefined` when the message has none). Decoded once, on first access. */
  get data(): unknown {
    if (!this.decoded) {
      this.value = decodeData(this.payload);
      this.decoded = true;
    }
    return this.value;
  }

  /** The data exactly as the sender encoded it (CBOR bytes; empty when there is no data). */
  get bytes(): Buffer {
    return this.payload;
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
