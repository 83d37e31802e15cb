// SPEC §12 `qcop monitor`: every broker event, as a control map, to the connections that asked (docs/MONITOR.md).
// With no monitor connected the broker pays one boolean test per event site (`tap.active`).
import { Kind } from '../protocol/constants.js';
import { encodeControl } from '../protocol/control.js';
import { encodeFrame } from '../protocol/frame.js';
import { Pattern } from '../protocol/pattern.js';

/** Data bytes copied into a send, call or reply event; larger data are shown by size only (docs/MONITOR.md). */
export const MONITOR_DATA_BYTES = 4096;

/** Most patterns one monitor may name (each is tried on every event of a channel). */
export const MONITOR_MAX_PATTERNS = 64;

/** What the tap needs of a connection. */
export interface Tapped {
  readonly id: number;
  name: string;
  pid: number;
  readonly transport: string;
  /** Queues an event frame; past the connection's queue limit it is dropped and counted (never holds a sender). */
  tap(frame: Buffer): void;
}


/** One monitoring connection: its patterns (none: everything) and whether the policy filters what it sees. */
interface Watcher {
  readonly patterns: Pattern[];
  /** For a user the policy grants `monitor` on some channels only: asked per channel. */
  readonly may: ((channel: string) => boolean) | null;
}

/** An event's fields; `data`, when present, holds the message's CBOR data bytes (sent after the map, not in it). */
export type MonitorEvent = Record<string, unknown> & { data?: Uint8Array };

/** The monitoring connections and the fan-out of events to them. */
export class MonitorTap<C extends Tapped> {
  private readonly watchers = new Map<C, Watcher>();
  /** True while at least one connection monitors: each event site tests this first. */
  active = false;
  /** Events built and queued (stats). */
  events = 0;

  /** Starts (or changes) monitoring for `c`; `may` filters channels for a user limited by the policy. */
  set(c: C, patterns: string[], may: ((channel: string) => boolean) | null): void {
    this.watchers.set(c, { patterns: patterns.map((p) => new Pattern(p)), may });
    this.active = true;
  }

  /** Stops monitoring for `c` (its request, or its connection closed). */
  remove(c: C): boolean {
    const had = this.watchers.delete(c);
    this.active = this.watchers.size > 0;
    return had;
  }

  get size(): number {
    return this.watchers.size;
  }

  /** True when `c` monitors. */
  watching(c: C): boolean {
    return this.watchers.has(c);
  }

  /**
   * Tells `build()`'s event to every monitor that sees `channel` ('' for events about connections:
   * those go to monitors without patterns or policy limits). The event is built and encoded once.
   */
  emit(channel: string, build: () => MonitorEvent): void {
    let frame: Buffer | null = null;
    for (const [c, w] of this.watchers) {
      if (!sees(w, channel)) continue;
      if (frame === null) {
        // PROTOCOL 3.15: the control map, then the message's data bytes as a msg frame carries them; aux = the map's length.
        const { data, ...ev } = build();
        ev.time = Date.now();
        const map = encodeControl(ev);
        frame = encodeFrame(Kind.Monitored, 0, 0, map.length, '', '', data instanceof Uint8Array ? Buffer.concat([map, data]) : map);
      }
      this.events++;
      c.tap(frame);
    }
  }
}

function sees(w: Watcher, channel: string): boolean {
  if (channel === '') return w.patterns.length === 0 && w.may === null;
  if (w.patterns.length > 0 && !w.patterns.some((p) => p.matches(channel))) return false;
  return w.may === null || w.may(channel);
}
