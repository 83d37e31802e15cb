// Checks the D-Bus bridge's options (`dbus: {...}` in the broker config) once, at start.
import { QcopError } from '../../runtime/index.js';
import { channelProblem } from '../../runtime/internal.js';
import { parseRule, type MatchRule } from './rules.js';

export interface DbusImport {
  rule: MatchRule;
  /** The qcop channel name the signals go to. */
  channel: string;
  /** The message name; default `<member>(<signature>)`, e.g. `Changed(d)`. */
  message?: string;
}

export interface DbusOptions {
  /** A D-Bus address (`unix:path=…`), or `session` (default: $DBUS_SESSION_BUS_ADDRESS) or `system`. */
  address: string;
  /** The bridge's own bus name (default org.qcop.Bridge). */
  name: string;
  /** qcop channel names or patterns whose messages become D-Bus signals. */
  export: string[];
  /** D-Bus signals brought into qcop. */
  import: DbusImport[];
  /** Channel names or patterns the `Send` method may send into; none by default (SPEC §8, docs/DECISIONS-dbus.md). */
  send: string[];
  /** Listener names to show on the bus as owned names while registered (concrete names only). */
  presence: string[];
  /** Longest pause between reconnection attempts to the bus (default 2000 ms). */
  retryMaxMs: number;
}

const bad = (what: string): never => {
  throw new QcopError('EINVAL', `dbus: ${what}`);
};

function address(bus: unknown): string {
  if (bus === undefined || bus === 'session') {
    const a = process.env.DBUS_SESSION_BUS_ADDRESS;
    return a || bad('no bus address: set dbus.bus or $DBUS_SESSION_BUS_ADDRESS');
  }
  if (bus === 'system') return process.env.DBUS_SYSTEM_BUS_ADDRESS || 'unix:path=/var/run/dbus/system_bus_socket';
  if (typeof bus !== 'string' || !/^[a-z]+:/.test(bus)) bad(`bus must be 'session', 'system' or an address like unix:path=/run/bus.sock`);
  return bus as string;
}

export function dbusOptions(o: Record<string, unknown>): DbusOptions {
  if (!o || typeof o !== 'object') bad('the option must be an object');
  const known = new Set(['bus', 'name', 'export', 'import', 'send', 'presence', 'retryMaxMs']);
  for (const k of Object.keys(o)) if (!known.has(k)) bad(`unknown option '${k}'`);
  const list = (key: string): string[] => {
    const v = o[key] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) bad(`${key} must be a list of channel names or patterns`);
    return v as string[];
  };
  const imports = (o.import ?? []) as unknown[];
  if (!Array.isArray(imports)) bad('import must be a list of { rule, channel, message? }');
  const out: DbusOptions = {
    address: address(o.bus),
    name: (o.name as string | undefined) ?? 'org.qcop.Bridge',
    export: list('export'),
    presence: list('presence'),
    send: list('send'),
    import: imports.map((x, i) => {
      const e = x as { rule?: unknown; channel?: unknown; message?: unknown };
      if (typeof e?.rule !== 'string' || typeof e.channel !== 'string') bad(`import[${i}] needs { rule, channel }`);
      if (e.channel!.toString().includes('*')) bad(`import[${i}].channel must be a concrete channel name`);
      let rule: MatchRule;
      try {
        rule = parseRule(e.rule as string);
      } catch (err) {
        return bad(`import[${i}]: ${(err as Error).message}`);
      }
      return { rule, channel: e.channel as string, ...(typeof e.message === 'string' ? { message: e.message } : {}) };
    }),
    retryMaxMs: typeof o.retryMaxMs === 'number' ? o.retryMaxMs : 2000,
  };
  if (typeof out.name !== 'string' || !/^[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+$/.test(out.name)) bad(`name '${String(out.name)}' is not a D-Bus bus name`);
  for (const name of out.send) {
    const why = channelProblem(name, `send entry '${name}'`);
    if (why) bad(why);
  }
  if (out.export.length + out.import.length + out.send.length + out.presence.length === 0) bad('nothing to bridge: give export, import, send or presence');
  return out;
}
