// The options a client is created with, and the defaults of those its connection uses.
import type { ShmOptions } from './shm-link.js';

/** Options a client is created with (see `connect()`). */
export interface ClientOptions extends ShmOptions {
  /** Name shown in the broker's stats. */
  name?: string;
  /** Bytes buffered before `send()` returns false (default 1 MiB); also the limit while disconnected. */
  highWaterMark?: number;
  /** Time for the handshake of each connection attempt (default 2000 ms). */
  connectTimeoutMs?: number;
  /** Reconnect after the broker goes away (default true). */
  reconnect?: boolean;
  /** Longest pause between reconnection attempts (default 2000 ms). */
  reconnectMaxDelayMs?: number;
  /**
   * While disconnected from a Unix socket, dial the moment the socket is created again (a restarted broker),
   * not only at the next backoff step (default true; runtime/client/socket-watch.ts).
   */
  reconnectWatch?: boolean;
  /** Largest frame accepted from the broker, whatever limit it announces (default 64 MiB; PROTOCOL 6.3). */
  maxInboundFrameBytes?: number;
  /** Receive this client's own sends where it listens (default true, as QCOP); false announces `noecho` (PROTOCOL 2.3). */
  echo?: boolean;
}

/** The connection's options with their defaults filled in (the shm path reads its own). */
export type SessionOptions = Required<Omit<ClientOptions, keyof ShmOptions>>;

export function sessionOptions(options: ClientOptions): SessionOptions {
  return {
    name: options.name ?? '',
    highWaterMark: options.highWaterMark ?? 1 << 20,
    connectTimeoutMs: options.connectTimeoutMs ?? 2000,
    reconnect: options.reconnect ?? true,
    reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? 2000,
    reconnectWatch: options.reconnectWatch ?? true,
    maxInboundFrameBytes: options.maxInboundFrameBytes ?? 64 << 20,
    echo: options.echo ?? true,
  };
}
