// The events of SPEC §12 `qcop monitor`, built at the broker's event sites; each caller tests
// `b.monitor.active` first, so none of this runs while nobody monitors (docs/MONITOR.md).
import { Flag, SEND_DESCRIPTOR_BYTES } from '../protocol/constants.js';
import { decodeControl } from '../protocol/control.js';
import { payloadOf, type Frame } from '../protocol/frame.js';
import { channelProblem, decodeName } from '../protocol/names.js';
import type { BrokerCore as Broker } from './broker.js';
import type { Connection } from './connection.js';
import { MONITOR_DATA_BYTES, MONITOR_MAX_PATTERNS, type MonitorEvent } from './monitor.js';

/** How an event names a client: connection id, name, pid, uid (null when unknown) and transport; the CLI adds the user name. */
export function clientOf(b: Broker, c: Connection): MonitorEvent {
  const uid = b.access.identity(c).uid;
  return { id: c.id, name: c.name, pid: c.pid, uid: uid >= 0 ? uid : null, transport: c.transport };
}

/** The data bytes a send carries: its payload, or for a shared-memory descriptor the length it names (PROTOCOL 8.3). */
export function dataBytes(f: Frame): number {
  const n = f.raw.length - f.messageEnd;
  if (!(f.flags & Flag.Shm)) return n;
  return n >= SEND_DESCRIPTOR_BYTES ? f.raw.readUInt32LE(f.messageEnd + 12) : 0;
}

/** The data part of a send, call or reply event: the CBOR bytes when small, else their size only. */
function dataOf(f: Frame, shm: boolean): MonitorEvent {
  const payload = payloadOf(f);
  if (shm) return { shm: true, bytes: dataBytes(f) };
  if (payload.length > MONITOR_DATA_BYTES) return { bytes: payload.length, truncated: true };
  return { bytes: payload.length, data: payload };
}

const messageOf = (f: Frame): string => decodeName(f.raw, f.channelEnd, f.messageEnd) ?? '';

/** A send (or a deliver, which asked for the count) routed to `receivers` processes. */
export function tapSend(b: Broker, c: Connection, f: Frame, channel: string, receivers: number): void {
  b.monitor.emit(channel, () => ({
    event: 'send', channel, message: messageOf(f), from: clientOf(b, c), receivers, ...dataOf(f, (f.flags & Flag.Shm) !== 0),
  }));
}

/** A call started (`id` is the broker's call id, repeated by its reply, failure or timeout), or refused with `error`. */
export function tapCall(b: Broker, c: Connection, f: Frame, channel: string, id: number, receivers: number, error?: string): void {
  b.monitor.emit(channel, () => ({
    event: 'call', id, channel, message: messageOf(f), from: clientOf(b, c), receivers, ...(error ? { error } : {}), ...dataOf(f, false),
  }));
}

/** The first answer to a call: a reply with its data, or a failure with its code and text. */
export function tapReply(b: Broker, replier: Connection, caller: Connection, id: number, channel: string, f: Frame, failure?: { code: string; text: string }): void {
  b.monitor.emit(channel, () => ({
    event: failure ? 'fail' : 'reply', id, channel, from: clientOf(b, replier), to: clientOf(b, caller),
    ...(failure ?? dataOf(f, false)),
  }));
}

/** A call no receiver answered in time. */
export function tapTimeout(b: Broker, caller: Connection, id: number, channel: string): void {
  b.monitor.emit(channel, () => ({ event: 'timeout', id, channel, to: clientOf(b, caller) }));
}

/** A listener name registered or dropped by a client (`reason` 'disconnect' when its connection closed). */
export function tapListen(b: Broker, c: Connection, channel: string, listening: boolean, reason?: string): void {
  b.monitor.emit(channel, () => ({ event: listening ? 'listen' : 'unlisten', channel, client: clientOf(b, c), ...(reason ? { reason } : {}) }));
}

/** Events about a client itself: 'connect', 'disconnect', 'lost' (with `count`), 'stuck', 'slow' (disconnected as too slow). */
export function tapClient(b: Broker, c: Connection, event: string, extra: MonitorEvent = {}): void {
  if (b.monitor.watching(c)) return; // a monitor's own losses are told to it (PROTOCOL 3.14), not to every monitor
  b.monitor.emit('', () => ({ event, client: clientOf(b, c), ...extra }));
}

/** A connection closed: its listener names go (each an 'unlisten'), then the 'disconnect'. */
export function tapClose(b: Broker, c: Connection, names: Iterable<string>): void {
  for (const name of names) tapListen(b, c, name, false, 'disconnect');
  tapClient(b, c, 'disconnect');
}

/** Reads a monitor request's payload (PROTOCOL 3.15): `{ patterns?: string[], stop?: true }`, or a reason it is bad. */
export function monitorRequest(payload: Buffer): { patterns: string[]; stop: boolean } | string {
  let req: Record<string, unknown>;
  try {
    req = decodeControl(payload);
  } catch {
    return 'monitor payload is not a CBOR map';
  }
  if (req.stop === true) return { patterns: [], stop: true };
  const patterns = req.patterns ?? [];
  if (!Array.isArray(patterns)) return 'monitor patterns must be a list';
  if (patterns.length > MONITOR_MAX_PATTERNS) return `more than ${MONITOR_MAX_PATTERNS} monitor patterns`;
  for (const p of patterns) {
    if (typeof p !== 'string') return 'a monitor pattern is not a string';
    const problem = channelProblem(p, 'pattern');
    if (problem) return problem;
  }
  return { patterns: patterns as string[], stop: false };
}
