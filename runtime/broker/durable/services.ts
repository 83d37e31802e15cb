// Service files (SPEC §10, docs/DURABLE.md §6): which program the broker starts for which channel.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { channelProblem } from '../../protocol/names.js';
import { Pattern } from '../../protocol/pattern.js';

/** One service file, checked. */
export interface Service {
  file: string;
  /** The channel name or pattern it serves. */
  channel: string;
  pattern: Pattern;
  /** argv of the program, or null for a systemd unit. */
  command: string[] | null;
  unit: string | null;
  user: string | number | null;
  cwd: string | null;
  env: Record<string, string>;
}

/** Largest service file read (a service file is a few lines of JSON). */
const MAX_FILE_BYTES = 64 * 1024;
/** The folder is looked at again at most this often: unrouted sends ask for services, and must not cost a readdir each. */
export const REFRESH_MS = 1000;
const UNIT_RE = /^[A-Za-z0-9:_.\\@-]{1,255}$/;

/** Checks one parsed service file; returns the problem as text. */
export function parseService(file: string, v: unknown): Service | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['channel', 'command', 'unit', 'user', 'cwd', 'env', 'description'].includes(k)) return `unknown key '${k}'`;
  if (typeof o.channel !== 'string') return 'channel: must be a channel name or pattern';
  const problem = channelProblem(o.channel);
  if (problem) return `channel: ${problem}`;
  let command: string[] | null = null;
  let unit: string | null = null;
  if (o.command !== undefined) {
    if (typeof o.command === 'string' && o.command.trim()) command = ['/bin/sh', '-c', o.command];
    else if (Array.isArray(o.command) && o.command.length > 0 && o.command.every((x) => typeof x === 'string' && x.length > 0 && !x.includes('\0'))) command = o.command as string[];
    else return 'command: must be a non-empty array of strings (argv) or a shell command line';
  }
  if (o.unit !== undefined) {
    if (typeof o.unit !== 'string' || !UNIT_RE.test(o.unit)) return 'unit: must be a systemd unit name';
    unit = o.unit;
  }
  if ((command === null) === (unit === null)) return 'needs exactly one of command or unit';
  if (o.user !== undefined && !(typeof o.user === 'string' && /^[a-z_][a-z0-9_.-]{0,31}\$?$/i.test(o.user)) && !(Number.isInteger(o.user) && (o.user as number) >= 0)) return 'user: must be a user name or a uid';
  if (o.cwd !== undefined && (typeof o.cwd !== 'string' || !path.isAbsolute(o.cwd))) return 'cwd: must be an absolute path';
  const env: Record<string, string> = {};
  if (o.env !== undefined) {
    if (typeof o.env !== 'object' || o.env === null || Array.isArray(o.env)) return 'env: must be an object of strings';
    for (const [k, x] of Object.entries(o.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || typeof x !== 'string' || x.includes('\0')) return `env: ${k} must be a name with a string value`;
      env[k] = x;
    }
  }
  return {
    file, channel: o.channel, pattern: new Pattern(o.channel), command, unit,
    user: (o.user as string | number | undefined) ?? null, cwd: (o.cwd as string | undefined) ?? null, env,
  };
}

/**
 * The services of `dir`, read again when the folder changed. A file that another user may write
 * is refused (it would let them run programs as the service's user), as is one owned by another
 * user than root or the broker's.
 */
export class ServiceTable {
  private services: Service[] = [];
  private stamp = '';
  private lookedAt = -Infinity;

  constructor(private readonly dir: string | null, private readonly log: (level: 'warn' | 'info', text: string) => void) {}

  /** The first service (files in name order) whose channel covers `channel`. */
  find(channel: string): Service | null {
    this.refresh();
    for (const s of this.services) if (s.pattern.matches(channel)) return s;
    return null;
  }

  get size(): number {
    return this.services.length;
  }

  /** Re-reads the folder when its modification time or its files' changed (looked at most every REFRESH_MS). */
  refresh(): void {
    if (!this.dir) return;
    const now = Date.now();
    if (now - this.lookedAt < REFRESH_MS) return;
    this.lookedAt = now;
    let names: string[];
    let stamp: string;
    try {
      names = fs.readdirSync(this.dir).filter((n) => n.endsWith('.json')).sort();
      stamp = names.map((n) => {
        const st = fs.statSync(path.join(this.dir!, n));
        return `${n}:${st.mtimeMs}:${st.size}`;
      }).join('|') + String(fs.statSync(this.dir).mtimeMs);
    } catch {
      names = [];
      stamp = 'none';
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    const out: Service[] = [];
    const me = process.geteuid?.() ?? 0;
    for (const n of names) {
      const file = path.join(this.dir, n);
      try {
        const st = fs.statSync(file);
        if (!st.isFile()) continue;
        if (st.mode & 0o022) throw new Error('group or others may write it');
        if (st.uid !== 0 && st.uid !== me) throw new Error(`owned by uid ${st.uid}, neither root nor the broker's user`);
        if (st.size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
        const s = parseService(file, JSON.parse(fs.readFileSync(file, 'utf8')));
        if (typeof s === 'string') throw new Error(s);
        out.push(s);
      } catch (e) {
        this.log('warn', `service file ${file} ignored: ${(e as Error).message}`);
      }
    }
    this.services = out;
  }
}
