// A thin Qt-flavoured facade over the client, for code ported from QCopChannel.
import { EventEmitter } from 'node:events';
import { QcopError } from '../protocol/errors.js';
import type { Client } from './client.js';
import { connect, type ConnectOptions } from './connect.js';
import type { Listener } from './handles.js';

let shared: Client | null = null;

/**
 * Qt's QCopChannel: `new QCopChannel('QPE/System')` listens and emits `'received'(message, data, channel)`;
 * the static `send`, `isRegistered` and `flush` use one client per process, opened by `QCopChannel.connect()`.
 */
export class QCopChannel extends EventEmitter {
  /** The channel (or pattern) this object listens on. */
  readonly channel: string;
  private readonly listener: Listener;

  /** Opens the process-wide client the static methods use (idempotent). */
  static async connect(options: ConnectOptions = {}): Promise<Client> {
    if (!shared) shared = await connect(options);
    return shared;
  }

  /** Closes the process-wide client. */
  static async disconnect(): Promise<void> {
    const c = shared;
    shared = null;
    await c?.close();
  }

  /** Sends `message` with `data` on `channel`; returns false past the high-water mark (as Qt, no receiver count). */
  static send(channel: string, message: string, data?: unknown): boolean {
    return client().send(channel, message, data);
  }

  /** True when anyone would receive a message on `channel`. */
  static isRegistered(channel: string): Promise<boolean> {
    return client().isRegistered(channel);
  }

  /** Resolves once every earlier send of this process was routed. */
  static flush(): Promise<{ messages: number; unrouted: number }> {
    return client().flush();
  }

  /** Listens on `channel` through the process-wide client (connect first). */
  constructor(channel: string, c: Client = client()) {
    super();
    this.channel = channel;
    this.listener = c.listen(channel, (msg) => {
      // As in Qt, the received data are the receiver's own: a copy when they were lent through shared memory.
      this.emit('received', msg.message, msg.copyData(), msg.channel);
    });
    this.listener.on('error', (err) => this.emit('error', err));
  }

  /** Stops listening. */
  close(): void {
    this.listener.close();
  }
}

function client(): Client {
  if (!shared) throw new QcopError('ECLOSED', 'call await QCopChannel.connect() first');
  return shared;
}
