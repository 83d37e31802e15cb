// The CLI's declarative pieces: a command is usage text, flags with descriptions, and one run function.
import { parseArgs } from 'node:util';
import { QcopError } from '../protocol/errors.js';

export interface FlagSpec {
  type: 'string' | 'boolean';
  description: string;
  multiple?: boolean;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  positionals: { min: number; max: number };
  run(args: ParsedArgs): Promise<number>;
}

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean | string[] | undefined>;
}

/** Flags every client command takes. */
export const CLIENT_FLAGS: Record<string, FlagSpec> = {
  socket: { type: 'string', description: 'broker socket path (default: $QCOP_SOCKET, then the standard path)' },
  url: { type: 'string', description: 'broker URL instead of a socket: unix:/path, tcp://host:port, tls://host:port, serial:///dev/ttyX' },
  help: { type: 'boolean', description: 'show this help' },
};

/** Flags also accepted before the command (`qcop --socket P send ...`, git/kubectl style); each is a string flag of CLIENT_FLAGS. */
export const GLOBAL_FLAGS = ['socket', 'url'] as const;

/** Usage problems exit 2 (SPEC §4). */
export class UsageError extends QcopError {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

/** Parses a command's arguments; `globals` are the flags given before the command, merged in as if given after it. */
export function parseCommandArgs(cmd: Command, argv: string[], globals: Record<string, string> = {}): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(cmd.flags)) options[name] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} (see qcop ${cmd.name} --help)`);
  }
  const flags = parsed.values as ParsedArgs['flags'];
  for (const [name, value] of Object.entries(globals)) {
    if (cmd.flags[name]?.type !== 'string') throw new UsageError(`qcop ${cmd.name} takes no --${name} (see qcop ${cmd.name} --help)`);
    if (flags[name] !== undefined) throw new UsageError(`--${name} given both before and after the command`);
    flags[name] = value;
  }
  if (flags.help) return { positionals: parsed.positionals, flags };
  const n = parsed.positionals.length;
  if (n < cmd.positionals.min) throw new UsageError(`missing arguments: usage: ${cmd.usage}`);
  if (n > cmd.positionals.max) throw new UsageError(`too many arguments: usage: ${cmd.usage}`);
  return { positionals: parsed.positionals, flags };
}

export function helpText(cmd: Command): string {
  const lines = [`usage: ${cmd.usage}`, '', cmd.summary, ''];
  const width = Math.max(...Object.keys(cmd.flags).map((f) => f.length)) + 4;
  for (const [name, spec] of Object.entries(cmd.flags)) {
    const arg = spec.type === 'string' ? ` ${name === 'socket' || name === 'config' ? 'PATH' : 'VALUE'}` : '';
    lines.push(`  --${(name + arg).padEnd(width + 6)} ${spec.description}`);
  }
  return lines.join('\n') + '\n';
}

/** Reads a string flag (undefined when absent). */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** Reads a repeatable string flag (empty when absent). */
export function listFlag(args: ParsedArgs, name: string): string[] {
  const v = args.flags[name];
  return Array.isArray(v) ? v : [];
}

/** Reads a flag as a positive number (or undefined); exit 2 when it is not one. */
export function numberFlag(args: ParsedArgs, name: string, options: { integer?: boolean; min?: number } = {}): number | undefined {
  const raw = args.flags[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const min = options.min ?? 0;
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n < min || (options.integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} needs a ${options.integer ? 'whole ' : ''}number${min > 0 ? ` of at least ${min}` : ''}, got '${String(raw)}'`);
  }
  return n;
}

/** Resolves on SIGINT/SIGTERM (streaming commands exit 0 on them). */
export function untilSignal(): { promise: Promise<void>; dispose(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  const handler = () => resolve();
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return {
    promise,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
