// One handler per frame kind (PROTOCOL 3); names are validated here, once, before any handler acts.
import {
  DEFAULT_CALL_TIMEOUT_MS, Flag, HEADER_SIZE, KIND_NAMES, Kind, MAX_CALL_TIMEOUT_MS, Off, PROTOCOL_VERSION,
} from '../protocol/constants.js';
import { decodeControl, encodeControl } from '../protocol/control.js';
import { isErrorCode } from '../protocol/errors.js';
import { encodeFrame, payloadOf, type Frame } from '../protocol/frame.js';
import { decodeName, isPattern, printableAscii } from '../protocol/names.js';
import type { AclAction } from './acl/policy.js';
import type { BrokerCore as Broker } from './broker.js';
import { CALL_BYTES } from './budget.js';
import type { Connection } from './connection.js';
import { reportInitial } from './initial-report.js';
import { clientOf, dataBytes, monitorRequest, tapCall, tapClient, tapListen, tapReply, tapSend } from './monitor-events.js';

type Handler = (b: Broker, c: Connection, f: Frame) => void;

/** Reads the channel field; on a bad name answers EINVAL and returns null (PROTOCOL 4.1). */
function channelOf(b: Broker, c: Connection, f: Frame, mode: 'concrete' | 'listener'): string | null {
  // The hot path: the same concrete channel as this connection's previous send, checked already.
  if (mode === 'concrete') {
    const same = c.lastChannel.get(f.raw, HEADER_SIZE, f.channelEnd);
    if (same !== null) return same;
  }
  const name = decodeName(f.raw, HEADER_SIZE, f.channelEnd);
  if (name === null) {
    c.error('EINVAL', 'channel is not valid UTF-8', f.id, f.kind);
    return null;
  }
  const problem = b.validNames.channelProblem(name);
  if (problem) {
    c.error('EINVAL', problem, f.id, f.kind);
    return null;
  }
  if (mode === 'concrete') {
    if (isPattern(name)) {
      c.error('EINVAL', `'${name}' is a pattern; a message goes to a concrete channel`, f.id, f.kind, name);
      return null;
    }
    c.lastChannel.set(f.raw, HEADER_SIZE, f.channelEnd, name);
  }
  return name;
}

/** Checks the message field (PROTOCOL 4.2); answers EINVAL when bad. */
function messageOk(b: Broker, c: Connection, f: Frame, channel: string): boolean {
  // Printable ASCII, the usual `setVolume(int)`, is valid as it stands: no string is made.
  if (printableAscii(f.raw, f.channelEnd, f.messageEnd)) return true;
  const name = decodeName(f.raw, f.channelEnd, f.messageEnd);
  if (name === null) {
    c.error('EINVAL', 'message is not valid UTF-8', f.id, f.kind, channel);
    return false;
  }
  const problem = b.validNames.messageProblem(name);
  if (problem) {
    c.error('EINVAL', problem, f.id, f.kind, channel);
    return false;
  }
  return true;
}

/**
 * A pattern text the broker does not hold yet is refused past its bound (SPEC §8, docs/CONFIG.md):
 * each listener pattern may be tried on every new channel, each watch pattern on every name
 * registered or unregistered, so their numbers bound what one request costs. A text already
 * held (by anyone) costs nothing more.
 */
function tooManyPatterns(c: Connection, f: Frame, name: string, held: boolean, count: number, max: number, what: string): boolean {
  if (held || count < max || !isPattern(name)) return false;
  c.error('ELIMIT', `more than ${max} distinct ${what} patterns on this broker`, f.id, f.kind, name);
  return true;
}

/** SPEC §9: EACCES for this request when the policy does not let `c` do `action` on `name`. */
function denied(b: Broker, c: Connection, f: Frame, action: AclAction, name: string, pattern = false): boolean {
  if (b.access.check(c, action, name, pattern)) return false;
  c.error('EACCES', `the policy does not let this user ${action} on ${name}`, f.id, f.kind, name);
  return true;
}

function result(c: Connection, f: Frame, aux = 0, payload?: Uint8Array): void {
  c.push(encodeFrame(Kind.Result, 0, f.id, aux, '', '', payload));
}

/**
 * SPEC §8: new work that would take the broker past `maxMemoryBytes` is refused with ENOBUFS
 * (an error reply; for a send, the client's 'error' event), before anything queued is dropped.
 */
function overBudget(b: Broker, c: Connection, f: Frame, channel: string, bytes: number): boolean {
  if (b.budget.fits(bytes)) return false;
  if (b.budget.refuse()) b.log('warn', `memory budget of ${b.options.maxMemoryBytes} bytes reached: new sends and calls get ENOBUFS (counted in stats)`);
  c.error('ENOBUFS', `the broker's memory budget (${b.options.maxMemoryBytes} bytes) is full; try again later`, f.id, f.kind, channel);
  return true;
}

const hello: Handler = (b, c, f) => {
  // PROTOCOL 2.1: a second hello is out of order.
  if (c.state !== 'hello') return c.fatal('EPROTO', 'hello sent twice', f.kind);
  if (f.aux !== PROTOCOL_VERSION) {
    return c.fatal('ENOTSUP', `protocol version ${f.aux} is not supported; this broker speaks ${PROTOCOL_VERSION}`, f.kind);
  }
  const name = decodeName(f.raw, f.channelEnd, f.messageEnd);
  if (name === null) return c.fatal('EPROTO', 'client name is not valid UTF-8', f.kind);
  let features: unknown = [];
  try {
    features = decodeControl(payloadOf(f)).features ?? [];
  } catch {
    return c.fatal('EPROTO', 'hello payload is not a CBOR map', f.kind);
  }
  c.name = name;
  c.pid = f.id;
  c.features = Array.isArray(features) ? features.filter((x): x is string => typeof x === 'string') : [];
  c.noEcho = c.features.includes('noecho');
  c.opened();
  c.push(encodeFrame(Kind.Welcome, 0, c.id, PROTOCOL_VERSION, '', '', encodeControl(b.welcome())));
  if (b.monitor.active) tapClient(b, c, 'connect');
  b.log('debug', `connection ${c.id}: hello from ${name || 'unnamed'} pid ${c.pid}`);
};

const send: Handler = (b, c, f) => {
  const channel = channelOf(b, c, f, 'concrete');
  if (channel === null || !messageOk(b, c, f, channel) || denied(b, c, f, 'send', channel)) return;
  // SPEC §9: a pattern listener receives only channels its user may listen to.
  let receivers = b.access.filter(b.registry.route(channel), channel);
  // PROTOCOL 2.3 noecho: never back to its sender (a new array: the route is cached).
  if (c.noEcho && receivers.includes(c)) receivers = receivers.filter((r) => r !== c);
  const n = receivers.length;
  // SPEC §10: retained values, queued channels and activation take the frame from here (durable/durable.ts).
  if ((f.flags & Flag.Retain || n === 0 || b.durable.hasQueued) && b.durable.send(c, f, channel, n)) return;
  let dropped = 0;
  // A descriptor's data stay in the sender's pool (bounded by maxPoolBytes); inline bytes are budgeted.
  if (n > 0 && !(f.flags & Flag.Shm) && overBudget(b, c, f, channel, n * f.raw.length)) return;
  if (f.flags & Flag.Shm) {
    // PROTOCOL 8.3: a descriptor; the shm router checks it even when nobody listens.
    if (b.shm.route(c, f, receivers) < 0) return;
  } else if (n > 0) {
    // PROTOCOL 3.4: the send frame becomes the msg frame in place; the data bytes are never read.
    const raw = f.raw;
    raw[Off.Kind] = Kind.Msg;
    raw[Off.Flags] = 0;
    raw.writeUInt32LE(b.nextSeq(), Off.Id);
    raw.writeUInt32LE(c.id, Off.Aux);
    for (let i = 0; i < n; i++) if (!receivers[i]!.deliver(raw)) dropped++;
  }
  if (b.figures.on) b.figures.count(channel, dataBytes(f), dropped);
  b.counters.routed++;
  b.counters.delivered += n;
  if (n === 0) b.counters.unrouted++;
  if (b.monitor.active) tapSend(b, c, f, channel, n);
  if (f.flags & Flag.WantCount) return result(c, f, n);
  c.sent++;
  if (n === 0) c.unrouted++;
};

const flush: Handler = (_b, c, f) => {
  const messages = c.sent;
  const unrouted = c.unrouted;
  c.sent = 0;
  c.unrouted = 0;
  result(c, f, messages, encodeControl({ messages, unrouted }));
};

const query: Handler = (b, c, f) => {
  const channel = channelOf(b, c, f, 'concrete');
  if (channel !== null && !denied(b, c, f, 'watch', channel)) result(c, f, b.access.filter(b.registry.route(channel), channel).length > 0 ? 1 : 0);
};

const listen: Handler = (b, c, f) => {
  const name = channelOf(b, c, f, 'listener');
  if (name === null || denied(b, c, f, 'listen', name, isPattern(name))) return;
  if (!c.listening.has(name)) {
    if (c.listening.size >= b.options.maxListeners) {
      return c.error('ELIMIT', `more than ${b.options.maxListeners} listener names on one connection`, f.id, f.kind, name);
    }
    if (tooManyPatterns(c, f, name, b.registry.has(name), b.registry.patternCount, b.options.maxPatterns, 'listener')) return;
    if (!b.quotas.take(c, 'listeners')) return c.error('ELIMIT', 'this user is at its listener quota', f.id, f.kind, name);
    c.listening.add(name);
    b.registry.add(name, c);
    if (b.monitor.active) tapListen(b, c, name, true);
    b.durable.listened(c, name); // SPEC §10: retained values first, then what waits on queued channels
  }
  result(c, f);
};

const unlisten: Handler = (b, c, f) => {
  const name = channelOf(b, c, f, 'listener');
  if (name === null) return;
  if (c.listening.delete(name)) {
    b.registry.remove(name, c);
    b.quotas.give(c, 'listeners');
    if (b.monitor.active) tapListen(b, c, name, false);
    b.durable.unlistened(c); // SPEC §10: what it held there goes to the others
  }
  result(c, f);
};

const watch: Handler = (b, c, f) => {
  const name = channelOf(b, c, f, 'listener');
  if (name === null || denied(b, c, f, 'watch', name, isPattern(name))) return;
  if (c.watches.size >= b.options.maxWatches) {
    return c.error('ELIMIT', `more than ${b.options.maxWatches} watches on one connection`, f.id, f.kind, name);
  }
  if (f.id === 0 || c.watches.has(f.id)) return c.error('EINVAL', `watch id ${f.id} is zero or in use`, f.id, f.kind, name);
  if (tooManyPatterns(c, f, name, b.watches.has(name), b.watches.patternCount, b.options.maxWatchPatterns, 'watch')) return;
  if (!b.quotas.take(c, 'watches')) return c.error('ELIMIT', 'this user is at its watch quota', f.id, f.kind, name);
  const w = b.watches.add(c, f.id, name);
  c.watches.set(f.id, w);
  // PROTOCOL 3.7: the current state first, each event marked initial, then the result; a long
  // report goes on in later turns, this connection's next frames waiting behind it (turns.ts).
  reportInitial(w, b.registry, b.watches.reports, (job) => b.turns.run(c, job), () => result(c, f));
};

const unwatch: Handler = (b, c, f) => {
  const w = c.watches.get(f.aux);
  if (w) {
    c.watches.delete(f.aux);
    b.watches.remove(w);
    b.quotas.give(c, 'watches');
  }
  result(c, f);
};

const call: Handler = (b, c, f) => {
  const channel = channelOf(b, c, f, 'concrete');
  if (channel === null || !messageOk(b, c, f, channel) || denied(b, c, f, 'send', channel)) return;
  const receivers = b.access.filter(b.registry.route(channel), channel);
  if (receivers.length === 0) {
    if (b.durable.call(c, f, channel)) return; // SPEC §10: waits for an activated program
    if (b.monitor.active) tapCall(b, c, f, channel, 0, 0, 'ENOLISTENER');
    return c.error('ENOLISTENER', `nobody listens on ${channel}`, f.id, f.kind, channel);
  }
  // PROTOCOL 6.1: calls in flight are bounded per connection; the connection stays open.
  if (b.calls.inFlight(c) >= b.options.maxCallsInFlight) {
    return c.error('ELIMIT', `more than ${b.options.maxCallsInFlight} calls in flight on one connection`, f.id, f.kind, channel);
  }
  if (overBudget(b, c, f, channel, CALL_BYTES + receivers.length * f.raw.length)) return;
  if (!b.quotas.take(c, 'callsInFlight')) return c.error('ELIMIT', 'this user is at its quota of calls in flight', f.id, f.kind, channel);
  const timeout = Math.min(f.aux === 0 ? DEFAULT_CALL_TIMEOUT_MS : f.aux, MAX_CALL_TIMEOUT_MS);
  const pending = b.calls.start(c, f.id, channel, receivers, timeout + 1000);
  const raw = f.raw;
  raw[Off.Kind] = Kind.Msg;
  raw[Off.Flags] = Flag.Call;
  raw.writeUInt32LE(pending.id, Off.Id);
  raw.writeUInt32LE(c.id, Off.Aux);
  b.counters.calls++;
  if (b.monitor.active) tapCall(b, c, f, channel, pending.id, receivers.length);
  for (const r of receivers) {
    // A receiver that cannot take the call will never answer it.
    if (!r.deliver(raw) && b.calls.giveUp(pending, r)) {
      c.error('ENOLISTENER', `every receiver on ${channel} is gone or too slow`, f.id, f.kind, channel);
    }
  }
};

const reply: Handler = (b, c, f) => {
  if (f.flags & Flag.Decline) {
    // PROTOCOL 3.11: a receiver that will not answer; when nobody is left, the caller hears ENOLISTENER.
    const orphan = b.calls.decline(c, f.id);
    if (orphan) orphan.caller.error('ENOLISTENER', `no receiver on ${orphan.channel} answers this call`, orphan.requestId, Kind.Call, orphan.channel);
    return;
  }
  const verdict = b.calls.reply(c, f.id);
  if (verdict === 'unknown') return c.error('ENOCALL', `no call ${f.id} is waiting for this connection's reply`, f.id, f.kind);
  if (verdict === 'late' || !verdict.first) {
    b.counters.lateReplies++;
    return;
  }
  const { call: pending } = verdict;
  if (f.flags & Flag.Failure) {
    const code = decodeName(f.raw, f.channelEnd, f.messageEnd) ?? '';
    const text = payloadOf(f).toString('utf8');
    const ok = isErrorCode(code);
    pending.caller.error(ok ? code : 'EPROTO', ok ? text : `replier sent a malformed error code`, pending.requestId, Kind.Call, pending.channel);
    if (b.monitor.active) tapReply(b, c, pending.caller, pending.id, pending.channel, f, { code: ok ? code : 'EPROTO', text });
  } else {
    pending.caller.push(encodeFrame(Kind.Result, 0, pending.requestId, 0, '', '', payloadOf(f)));
    if (b.monitor.active) tapReply(b, c, pending.caller, pending.id, pending.channel, f);
  }
};

const pool: Handler = (b, c, f) => b.shm.announce(c, f);

/** PROTOCOL 3.16: a message of a queued channel was handled (no answer). */
const ack: Handler = (b, c, f) => b.durable.ack(c, f.id);

const release: Handler = (b, c, f) => b.shm.release(c, f);

/** The channel name under which SPEC §9's `monitor` action covers the broker's figures (docs/ACL.md). */
export const STATS_CHANNEL = 'qcop/stats';

const stats: Handler = (b, c, f) => {
  if (denied(b, c, f, 'monitor', STATS_CHANNEL)) return;
  // PROTOCOL 3.9: `{ channels: true }` asks for per-channel figures (and keeps them counted a while).
  let channels = false;
  if (f.raw.length > f.messageEnd) {
    try {
      channels = decodeControl(payloadOf(f)).channels === true;
    } catch {
      return c.error('EINVAL', 'stats payload is not a CBOR map', f.id, f.kind);
    }
  }
  if (channels) b.figures.asked();
  result(c, f, 0, encodeControl(b.stats(channels)));
};

/** PROTOCOL 3.15, SPEC §12: root, the broker's user, or `monitor` rules of the policy (each pattern, then each event's channel). */
const monitor: Handler = (b, c, f) => {
  const req = monitorRequest(payloadOf(f));
  if (typeof req === 'string') return c.error('EINVAL', req, f.id, f.kind);
  if (req.stop) {
    b.monitor.remove(c);
    return result(c, f);
  }
  const may = b.access.monitorFilter(c, req.patterns);
  if (may === false) {
    const what = req.patterns.length ? req.patterns.join(' ') : 'everything';
    return c.error('EACCES', `uid ${clientOf(b, c).uid} may not monitor ${what} (root, the broker's user, or a monitor rule)`, f.id, f.kind);
  }
  b.monitor.set(c, req.patterns, may);
  result(c, f);
};

const HANDLERS: Partial<Record<number, Handler>> = {
  [Kind.Hello]: hello,
  [Kind.Send]: send,
  [Kind.Flush]: flush,
  [Kind.Query]: query,
  [Kind.Listen]: listen,
  [Kind.Unlisten]: unlisten,
  [Kind.Watch]: watch,
  [Kind.Unwatch]: unwatch,
  [Kind.Call]: call,
  [Kind.Reply]: reply,
  [Kind.Stats]: stats,
  [Kind.Pool]: pool,
  [Kind.Release]: release,
  [Kind.Monitor]: monitor,
  [Kind.Ack]: ack,
};

/** Dispatches one frame: hello first (PROTOCOL 2.1), unknown kinds answered ENOTSUP (PROTOCOL 5.2). */
export function dispatch(b: Broker, c: Connection, f: Frame): void {
  if (c.state === 'hello' && f.kind !== Kind.Hello) {
    return c.fatal('EPROTO', `expected hello, got ${KIND_NAMES[f.kind] ?? `kind 0x${f.kind.toString(16)}`}`, f.kind);
  }
  const handler = HANDLERS[f.kind];
  if (!handler) return c.error('ENOTSUP', `unknown frame kind 0x${f.kind.toString(16)}`, f.id, f.kind);
  handler(b, c, f);
}
