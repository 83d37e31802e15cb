// What programs and carriers see of a running broker (runtime/index.ts exports it); broker.ts's BrokerCore implements it.
import type { Duplex } from 'node:stream';
import type { ResolvedOptions } from './options.js';
import type { PeerIdentity } from './peer.js';

/** Figures the broker keeps; `stats()` and `qcop stats` report them. */
export interface BrokerCounters {
  routed: number;
  delivered: number;
  unrouted: number;
  droppedSlow: number;
  disconnectedSlow: number;
  calls: number;
  stuckReceivers: number;
  lateReplies: number;
  protocolErrors: number;
  connectionsRefused: number;
}

/**
 * A running broker, as programs and carriers see it (start one with `startBroker()`): what it was
 * started with, where it listens, taking connections from a carrier, in-process clients, its
 * figures, its log, and closing. Everything else is the core's own (BrokerCore below).
 */
export interface Broker {
  readonly options: Readonly<ResolvedOptions>;
  /** The Unix socket path this broker listens on. */
  readonly socketPath: string;
  /** Adds an already connected stream (a carrier's TCP, TLS or serial connection): its id (as stats shows it), or null when refused. */
  accept(stream: Duplex, transport: string, identity?: PeerIdentity | null): { readonly id: number } | null;
  /** A carrier's listening socket reported an error: descriptor exhaustion is counted (SPEC §8). */
  acceptFailed(err: NodeJS.ErrnoException, where: string): void;
  /** A client stream connected to this broker inside the same process (`connect({ broker })`). */
  connectInProcess(): Duplex;
  /** Adds a carrier's figures to `stats()` under `carriers.<name>`. */
  addStatsSource(name: string, source: () => Record<string, unknown>): void;
  /** The broker's figures (what `qcop stats` prints). */
  stats(): Record<string, unknown>;
  log(level: 'error' | 'warn' | 'info' | 'debug', text: string): void;
  /** `'log'` (level, text) for every log line; `'close'` once closed. */
  on(event: 'log', fn: (level: string, text: string) => void): this;
  on(event: 'close', fn: () => void): this;
  /** Re-reads `aclDir` (SPEC §9) and applies it to the connections there are; false (old policy kept, logged) when a file is bad. */
  reload(): boolean;
  /** Stops listening, closes every connection, removes the socket file. */
  close(): Promise<void>;
}

/** What every carrier's `start()` returns (channels/README.md): its figures for `stats().carriers`, and stopping it. */
export interface Carrier {
  stats(): Record<string, unknown>;
  close(): Promise<void>;
}
