// The CLI's `qcop monitor` and `qcop top` (SPEC §12, docs/MONITOR.md): broker events as JSON lines or text, and a refreshing view of rates.
import { Accounts } from '../broker/acl/accounts.js';
import type { MonitorClient, MonitorEvent } from '../client/monitor.js';
import { connectFromFlags, printJson } from './connect-flags.js';
import { toJsonData } from './json-data.js';
import { channelArg } from './messaging.js';
import { CLIENT_FLAGS, UsageError, numberFlag, stringFlag, untilSignal, type Command, type ParsedArgs } from './table.js';

const accounts = new Accounts();
const names = new Map<number, string | null>();

/** The user name of a uid (from /etc/passwd, cached), or null. */
function userOf(uid: unknown): string | null {
  if (typeof uid !== 'number') return null;
  if (!names.has(uid)) names.set(uid, accounts.userName(uid));
  return names.get(uid)!;
}

const withUser = (c: MonitorClient) => ({ ...c, user: userOf(c.uid) });

/** An event as its JSON line shows it: ISO time, clients with their user names, data in the CLI's JSON form. */
export function eventLine(ev: MonitorEvent): Record<string, unknown> {
  const { time, ...rest } = ev;
  const out: Record<string, unknown> = { time: new Date(time).toISOString(), ...rest };
  for (const k of ['client', 'from', 'to'] as const) if (ev[k]) out[k] = withUser(ev[k]!);
  if ('data' in ev) out.data = toJsonData(ev.data);
  return out;
}

const COLOURS: Record<string, string> = { send: '32', call: '36', reply: '36', fail: '31', timeout: '31', lost: '33', stuck: '33', slow: '31', connect: '35', disconnect: '35' };
const who = (c: MonitorClient | undefined) => (c ? `${c.name || '?'}[${c.pid}]${userOf(c.uid) ? ` ${userOf(c.uid)}` : ''}` : '');

/** One aligned line for a person: time, event, channel, message, who, and the rest. */
export function eventText(ev: MonitorEvent, colour: boolean): string {
  const t = new Date(ev.time).toISOString().slice(11, 23);
  const detail: string[] = [];
  if (ev.from) detail.push(`from ${who(ev.from)}`);
  if (ev.to) detail.push(`to ${who(ev.to)}`);
  if (ev.client) detail.push(who(ev.client));
  if (ev.receivers !== undefined) detail.push(`→ ${ev.receivers}`);
  if (ev.id !== undefined) detail.push(`#${ev.id}`);
  if (ev.code) detail.push(`${ev.code} ${ev.text ?? ''}`.trim());
  if (ev.error) detail.push(ev.error);
  if (ev.count !== undefined) detail.push(`${ev.count} lost`);
  if (ev.reason) detail.push(`(${ev.reason})`);
  if ('data' in ev) detail.push(JSON.stringify(toJsonData(ev.data)));
  else if (ev.truncated || ev.shm) detail.push(`<${ev.bytes} bytes${ev.shm ? ', shared memory' : ''}>`);
  const name = ev.event.padEnd(10);
  const head = `${t}  ${colour && COLOURS[ev.event] ? `\x1b[${COLOURS[ev.event]}m${name}\x1b[0m` : name}  ${(ev.channel ?? '').padEnd(24)}  ${(ev.message ?? '').padEnd(18)}`;
  return `${head}  ${detail.join('  ')}`.trimEnd();
}

function formatFlag(args: ParsedArgs): 'json' | 'text' {
  const format = stringFlag(args, 'format') ?? 'json';
  if (format !== 'json' && format !== 'text') throw new UsageError(`--format must be json or text, not '${format}'`);
  return format;
}

export const monitor: Command = {
  name: 'monitor',
  summary: 'Print every broker event (sends, calls, replies, registrations, losses, connections) on channels matching PATTERN (default all) as JSON lines.',
  usage: 'qcop monitor [PATTERN...] [--format json|text]',
  flags: { ...CLIENT_FLAGS, format: { type: 'string', description: 'json (default: one JSON object per line) or text (one aligned line per event, coloured on a terminal)' } },
  positionals: { min: 0, max: 64 },
  async run(args) {
    const patterns = args.positionals.map((p) => channelArg(p, false));
    const format = formatFlag(args);
    const colour = format === 'text' && process.stdout.isTTY === true;
    const client = await connectFromFlags(args, true);
    const signal = untilSignal();
    client.on('lost', (info: { count: number }) => process.stderr.write(`qcop monitor: ${info.count} event(s) lost: this monitor did not keep up\n`));
    try {
      await client.monitor(patterns, (ev) => {
        if (format === 'json') printJson(eventLine(ev));
        else process.stdout.write(eventText(ev, colour) + '\n');
      });
      await signal.promise;
      return 0;
    } finally {
      signal.dispose();
      await client.close();
    }
  },
};

interface Figure { channel: string; messages: number; bytes: number; dropped: number; receivers: number | null }

/** What `top` shows: per-channel rates between two figures taken `ms` apart, and each client. */
export function topSnapshot(before: Record<string, unknown>, after: Record<string, unknown>, ms: number): Record<string, unknown> {
  const figuresOf = (s: Record<string, unknown>) => ((s.channelFigures as { channels?: Figure[] } | undefined)?.channels ?? []);
  const earlier = new Map(figuresOf(before).map((f) => [f.channel, f]));
  const since = (before.channelFigures as { since?: number } | undefined)?.since;
  const sameRun = since !== undefined && since === (after.channelFigures as { since?: number } | undefined)?.since;
  const channels = figuresOf(after).map((f) => {
    const e = sameRun ? earlier.get(f.channel) : undefined;
    const per = (n: number, m = 0) => Math.round(((n - m) * 1000) / ms);
    return { channel: f.channel, msgPerSec: per(f.messages, e?.messages), bytesPerSec: per(f.bytes, e?.bytes), messages: f.messages, bytes: f.bytes, receivers: f.receivers, dropped: f.dropped };
  });
  channels.sort((a, b) => b.msgPerSec - a.msgPerSec || b.messages - a.messages || a.channel.localeCompare(b.channel));
  const conns = ((after.queues as { connections?: Array<Record<string, unknown>> } | undefined)?.connections ?? []).map((c) => ({
    id: c.id, name: c.name, pid: c.pid, uid: c.uid, user: userOf(c.uid), transport: c.transport, listeners: c.listeners,
    queuedBytes: c.queuedBytes, lost: c.lost, stuck: c.stuck, callsInFlight: c.callsInFlight,
  }));
  conns.sort((a, b) => Number(b.queuedBytes) - Number(a.queuedBytes) || Number(a.id) - Number(b.id));
  return { broker: after.broker, pid: after.pid, uptimeMs: after.uptimeMs, intervalMs: ms, countingSince: since ?? null, clients: conns.length, channels, connections: conns };
}

const cut = (s: unknown, w: number) => String(s ?? '').slice(0, w).padEnd(w);
const num = (n: unknown, w: number) => String(n ?? '-').padStart(w);

/** The terminal view: a header, the busiest channels, the clients with the longest queues. */
export function topText(s: Record<string, unknown>, rows: number): string {
  const channels = s.channels as Array<Record<string, unknown>>;
  const conns = s.connections as Array<Record<string, unknown>>;
  const lines = [`qcop top — broker ${s.broker} (pid ${s.pid}), up ${Math.round(Number(s.uptimeMs) / 1000)} s, ${s.clients} clients, every ${Number(s.intervalMs) / 1000} s`, ''];
  lines.push(`${cut('CHANNEL', 32)} ${num('MSG/S', 9)} ${num('BYTES/S', 11)} ${num('RECEIVERS', 9)} ${num('DROPPED', 8)}`);
  for (const c of channels.slice(0, rows)) lines.push(`${cut(c.channel, 32)} ${num(c.msgPerSec, 9)} ${num(c.bytesPerSec, 11)} ${num(c.receivers, 9)} ${num(c.dropped, 8)}`);
  lines.push('', `${cut('CLIENT', 24)} ${num('PID', 7)} ${cut(' USER', 10)} ${num('QUEUED', 10)} ${num('LOST', 8)} ${num('LISTENERS', 9)}`);
  for (const c of conns.slice(0, rows)) lines.push(`${cut(c.name || `#${c.id}`, 24)} ${num(c.pid, 7)} ${cut(` ${c.user ?? c.uid ?? '-'}`, 10)} ${num(c.queuedBytes, 10)} ${num(c.lost, 8)} ${num(c.listeners, 9)}`);
  return lines.join('\n') + '\n';
}

export const top: Command = {
  name: 'top',
  summary: 'Show per-channel message and byte rates and per-client queues, refreshed; --once prints one JSON snapshot.',
  usage: 'qcop top [--once] [--interval S]',
  flags: {
    ...CLIENT_FLAGS,
    once: { type: 'boolean', description: 'print one JSON snapshot (rates over one interval) and exit' },
    interval: { type: 'string', description: 'seconds between figures (default 1)' },
  },
  positionals: { min: 0, max: 0 },
  async run(args) {
    const ms = (numberFlag(args, 'interval', { min: 0.05 }) ?? 1) * 1000;
    const client = await connectFromFlags(args, true);
    const signal = untilSignal();
    let stopped = false;
    void signal.promise.then(() => (stopped = true));
    const sleep = () => Promise.race([new Promise((r) => setTimeout(r, ms)), signal.promise]);
    try {
      let before = await client.stats({ channels: true });
      let at = Date.now();
      for (;;) {
        await sleep();
        if (stopped) return 0;
        const after = await client.stats({ channels: true });
        const now = Date.now();
        const snap = topSnapshot(before, after, now - at);
        if (args.flags.once) {
          printJson(snap);
          return 0;
        }
        const tty = process.stdout.isTTY === true;
        process.stdout.write((tty ? '\x1b[H\x1b[2J' : '') + topText(snap, tty ? Math.max(3, Math.floor(((process.stdout.rows ?? 24) - 6) / 2)) : 20) + (tty ? '' : '\n'));
        before = after;
        at = now;
      }
    } finally {
      signal.dispose();
      await client.close();
    }
  },
};
