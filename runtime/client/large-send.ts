// The client's large-message path (PROTOCOL 8): sends through pool slots (in the Outbox's order), Msg|Shm receipt.
import { Flag, Kind } from '../protocol/constants.js';
import { Major, headSize, putHead, putHead32 } from '../protocol/cbor.js';
import { encodeControl } from '../protocol/control.js';
import { QcopError } from '../protocol/errors.js';
import { encodeFrame, payloadOf, type Frame } from '../protocol/frame.js';
import type { Listener } from './handles.js';
import { ReceivedMessage } from './message.js';
import { LOAN_HEAD, type Slot } from './pool.js';
import type { BigSend } from './outbox.js';
import { ShmLink, type ShmOptions } from './shm-link.js';

/** Where the CBOR head of a loan goes: its last 5 bytes before the data (a 0x5a byte-string head, 4-byte length). */
const HEAD_AT = LOAN_HEAD - 5;

/** What the large-message path needs from the client. */
export interface LargeHost {
  /** True while connected (frames can be written now). */
  writable(): boolean;
  /** True while writes wait behind large data (the Outbox's order, PROTOCOL 8.5). */
  holding(): boolean;
  /** Writes a frame to the stream now, in order with everything written before. */
  writeNow(frame: Buffer): void;
  /** Writes data inline (shm went away meanwhile); throws EMSGSIZE when they do not fit. */
  writeInline(big: BigSend): void;
  /** Writes a request whose only possible answer of interest is an error. */
  control(kind: Kind, flags: number, aux: number, payload: Uint8Array | undefined, onError: (e: Error) => void): void;
  newId(): number;
  reportError(err: Error): void;
  /** Tells the application `count` messages were lost for it (as the broker's lost notices do). */
  lost(count: number, why: string): void;
  /** A slot came back: what waits for one goes on. */
  pump(): void;
  /** The pool holds this sender back less: the client decides about 'drain'. */
  drained(): void;
}

/** Sends by descriptor through this client's pool, receives by descriptor from others' (PROTOCOL 8); the Outbox keeps the order. */
export class LargeSends {
  readonly shm: ShmLink;
  /** Counts connections, so a release never reaches a broker that did not hand out the token. */
  private generation = 0;

  constructor(private readonly host: LargeHost, local: boolean, options: ShmOptions) {
    this.shm = new ShmLink(local, options, (i, key) => this.announce(i, key), (i) => host.control(Kind.Pool, Flag.Retire, i, undefined, (e) => host.reportError(e)));
  }

  /**
   * `data` given to send(): when it is a loan (or a prefix of one), the large send of it in place (`big`),
   * or its bytes as a copy when its pool went away meanwhile; undefined when it is not a loan.
   */
  claim(channel: string, message: string, data: Uint8Array, newId: () => number): { big: BigSend } | { copy: Buffer } | undefined {
    const loaned = this.shm.pool.outstanding > 0 ? this.shm.pool.claim(data) : undefined;
    if (!loaned) return undefined;
    return loaned.slot ? { big: this.loanSend(channel, message, newId(), loaned.slot, data.length) } : { copy: loaned.copy! };
  }

  /** True when `n` bytes of data, as a CBOR byte string, go through the pool rather than inline. */
  wantsBytes(n: number): boolean {
    return this.shm.wants(headSize(n) + n);
  }

  /** True when an encoded payload of `length` bytes goes through the pool (and fits one slot). */
  takes(length: number): boolean {
    return this.shm.wants(length) && length <= this.shm.capacity;
  }

  /** True when `n` bytes of data, as a CBOR byte string, go through the pool and fit one slot. */
  takesBytes(n: number): boolean {
    return n < 2 ** 32 && this.takes(headSize(n) + n);
  }

  /** Gives a loan back unsent; false when `data` is not an outstanding loan. */
  unloan(data: Uint8Array): boolean {
    return this.shm.pool.unloan(data);
  }

  /**
   * Encodes a byte string straight into a free slot: the CBOR head, then one copy of the bytes
   * (the common large case, so latency stays nearly flat with size). False when it cannot now.
   */
  direct(channel: string, message: string, data: Uint8Array): boolean {
    const n = data.length;
    const head = headSize(n);
    if (!this.host.writable() || this.host.holding() || !this.shm.wants(head + n) || head + n > this.shm.capacity || n >= 2 ** 32) return false;
    let slot;
    try {
      slot = this.shm.pool.alloc(head + n);
    } catch {
      return false; // the general path reports it
    }
    if (!slot) return false;
    const b = slot.buffer;
    b.set(data, putHead(b, 0, Major.Bytes, n));
    this.host.writeNow(encodeFrame(Kind.Send, Flag.Shm, this.host.newId(), 0, channel, message, this.shm.sendDescriptor(slot)));
    return true;
  }

  /**
   * A buffer in a free slot for `length` bytes of data, to be filled in place (client.loan); null
   * when no slot is free now, undefined when the pool is not the way for such data here and now.
   */
  loan(length: number): Buffer | null | undefined {
    if (!this.host.writable() || !this.shm.wants(length) || LOAN_HEAD + length > this.shm.capacity) return undefined;
    try {
      return this.shm.pool.loan(length);
    } catch (e) {
      // A full /dev/shm passes (an ordinary buffer, inline if it fits); anything else ends the pool here.
      if ((e as QcopError).code !== 'ENOSPC') this.shm.fail(`the pool could not be created: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** The large send of `n` bytes of data written in place into a loaned slot: the head goes in front of them (zero copy). */
  private loanSend(channel: string, message: string, id: number, slot: Slot, n: number): BigSend {
    const b = slot.buffer;
    putHead32(b, HEAD_AT, Major.Bytes, n);
    return { channel, message, id, payload: b.subarray(HEAD_AT, LOAN_HEAD + n), slot: { ...slot, offset: slot.offset + HEAD_AT, length: 5 + n } };
  }

  /** A loan waiting in the Outbox when the connection ended: its pool is unmapped, so it goes on as a copy (PROTOCOL 8.7). */
  unslot(big: BigSend): void {
    big.payload = Buffer.from(big.payload);
    big.slot = undefined;
  }

  /** PROTOCOL 8.5: a slot came back; what waits for one goes on. */
  freed(slotId: number): void {
    this.shm.pool.free(slotId);
    this.host.pump();
  }

  /** PROTOCOL 8.5: a slot is held only by slow receivers; it no longer holds this sender back. */
  lagging(slotId: number): void {
    this.shm.pool.lag(slotId);
    this.host.drained();
  }

  /** The connection ended: the pool is dropped (PROTOCOL 8.7). */
  disconnected(): void {
    this.generation++;
    this.shm.disconnected();
  }

  /** Client closed: unmap everything. */
  close(): void {
    this.shm.close();
  }

  /**
   * A Msg|Shm: maps the slot (zero copy), hands it to the listeners, releases it when they are done
   * (PROTOCOL 8.4). A slot its sender shrank away (docs/SHM.md §10) is a lost message for this
   * receiver: counted and told, never handed over as zeros; a handler that met it through
   * `msg.data` (EBADSLOT) is cut short the same way.
   */
  receive(f: Frame, channel: string, message: string, targets: Listener[]): void {
    const d = this.shm.parse(payloadOf(f));
    if (!d) return this.host.reportError(new QcopError('EPROTO', 'malformed shared-memory descriptor from the broker'));
    const generation = this.generation;
    const release = () => {
      if (this.generation === generation && this.host.writable()) this.host.writeNow(encodeFrame(Kind.Release, 0, this.host.newId(), d.token, '', ''));
    };
    if (targets.length === 0) return release();
    let view;
    try {
      view = this.shm.views.open(d.name, d.size, d.offset, d.length);
    } catch (e) {
      release();
      return this.host.lost(1, `a shared-memory message on ${channel} could not be read: ${(e as Error).message}`);
    }
    const done = view.done;
    let faulted = false;
    const msg = new ReceivedMessage(channel, message, view.bytes, undefined, () => {
      done();
      release();
    }, () => {
      if (view.intact()) return true;
      if (!faulted) {
        faulted = true;
        this.host.lost(1, `the sender of a shared-memory message on ${channel} shrank its segment under it`);
      }
      return false;
    });
    try {
      for (const l of targets) {
        if (l.closed) continue;
        try {
          l.handler(msg);
        } catch (e) {
          if (!msg.isFault(e)) throw e;
        }
      }
    } finally {
      msg.dispatched();
    }
  }

  /** Copies the data into a slot (a byte string's head first) and writes the descriptor; false when no slot is free now. */
  place(big: BigSend): boolean {
    if (!this.shm.active) {
      // The shm path went away (failure, or a broker without it): inline, or EMSGSIZE with the reason.
      try {
        this.host.writeInline(big);
      } catch (e) {
        this.host.reportError(e as Error);
      }
      if (big.slot) this.shm.pool.free(big.slot.id);
      return true;
    }
    if (big.slot) {
      this.host.writeNow(encodeFrame(Kind.Send, Flag.Shm, big.id, 0, big.channel, big.message, this.shm.sendDescriptor(big.slot)));
      return true;
    }
    const head = big.bytes ? headSize(big.payload.length) : 0;
    let slot;
    try {
      slot = this.shm.pool.alloc(head + big.payload.length);
    } catch (e) {
      if ((e as QcopError).code === 'ENOSPC') return this.spill(big, e as QcopError);
      this.shm.fail(`the pool could not be created: ${(e as Error).message}`);
      return this.place(big);
    }
    if (!slot) return false;
    slot.buffer.set(big.payload, big.bytes ? putHead(slot.buffer, 0, Major.Bytes, big.payload.length) : 0);
    this.host.writeNow(encodeFrame(Kind.Send, Flag.Shm, big.id, 0, big.channel, big.message, this.shm.sendDescriptor(slot)));
    return true;
  }

  /**
   * /dev/shm is full (SPEC §8): this message goes inline when it fits a frame, else the send fails
   * with ENOSPC; the pool stays in use for the next ones, as space may come back.
   */
  private spill(big: BigSend, full: QcopError): true {
    try {
      this.host.writeInline(big);
    } catch {
      throw new QcopError('ENOSPC', `${full.message.startsWith(`${full.code}: `) ? full.message.slice(full.code.length + 2) : full.message}; the ${big.payload.length} bytes of data on ${big.channel} are also too large to go inline (docs/SHM.md §10)`, { cause: full });
    }
    return true;
  }

  /** PROTOCOL 8.2: tells the broker about a new segment, ahead of the first send that uses it. */
  private announce(index: number, key: string): void {
    this.host.control(Kind.Pool, 0, index, encodeControl({ key, max: this.shm.pool.maxPoolBytes }), (e) => {
      this.shm.fail(`the broker refused the pool: ${e.message}`);
      this.host.reportError(e);
    });
  }
}
