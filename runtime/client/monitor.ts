// SPEC §12 in the library: `client.monitor(patterns, onEvent)` receives every broker event (docs/MONITOR.md).
import { decodeControl, encodeControl } from '../protocol/control.js';
import { decodeData } from '../protocol/data.js';
import { payloadOf, type Frame } from '../protocol/frame.js';

/** A client as a monitor event names it: connection id, name, pid, uid (null when the broker does not know it), transport. */
export interface MonitorClient {
  id: number;
  name: string;
  pid: number;
  uid: number | null;
  transport: string;
}

/**
 * One broker event (docs/MONITOR.md lists them): `event` is 'connect', 'disconnect', 'listen',
 * 'unlisten', 'send', 'call', 'reply', 'fail', 'timeout', 'lost', 'stuck' or 'slow'; `time` is
 * the broker's clock in ms since the epoch. Send, call and reply events carry `bytes` and the
 * decoded `data` when at most 4096 bytes (else `truncated`, or `shm` for a shared-memory message).
 */
export interface MonitorEvent {
  event: string;
  time: number;
  channel?: string;
  message?: string;
  client?: MonitorClient;
  from?: MonitorClient;
  to?: MonitorClient;
  receivers?: number;
  id?: number;
  bytes?: number;
  data?: unknown;
  truncated?: true;
  shm?: true;
  code?: string;
  text?: string;
  count?: number;
  reason?: string;
  error?: string;
  [key: string]: unknown;
}

/** Reads a monitored frame (PROTOCOL 3.15): the map (`aux` bytes), then the message's data bytes if any. */
export function decodeMonitored(f: Frame): MonitorEvent {
  const payload = payloadOf(f);
  const cut = Math.min(f.aux, payload.length);
  const ev = decodeControl(payload.subarray(0, cut)) as MonitorEvent;
  if (cut < payload.length) {
    try {
      ev.data = decodeData(payload.subarray(cut), true);
    } catch (e) {
      ev.data = undefined;
      ev.dataError = (e as Error).message;
    }
  }
  return ev;
}

/** What a monitor needs of its client. */
export interface MonitorOwner {
  monitorRequest(payload: Uint8Array): Promise<unknown>;
}

/** The monitoring of one client (one per connection): started by `client.monitor()`, redone after a reconnection. */
export class Monitoring {
  private patterns: string[] = [];
  private handler: ((ev: MonitorEvent) => void) | null = null;

  constructor(private readonly owner: MonitorOwner) {}

  get active(): boolean {
    return this.handler !== null;
  }

  /** Starts, or changes the patterns and handler; resolves once the broker took it, rejects with EACCES or EINVAL. */
  async start(patterns: string[], handler: (ev: MonitorEvent) => void): Promise<void> {
    await this.owner.monitorRequest(encodeControl({ patterns }));
    this.patterns = [...patterns];
    this.handler = handler;
  }

  /** Asks again after a reconnection. */
  restore(): Promise<void> | null {
    return this.handler ? this.owner.monitorRequest(encodeControl({ patterns: this.patterns })).then(() => undefined) : null;
  }

  async stop(): Promise<void> {
    if (!this.handler) return;
    this.handler = null;
    await this.owner.monitorRequest(encodeControl({ stop: true }));
  }

  /** A monitored frame arrived. */
  frame(f: Frame): void {
    this.handler?.(decodeMonitored(f));
  }
}
