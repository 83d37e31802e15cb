// The CLI's `qcop introspect CHANNEL`: the description of the object exposed there (SPEC §12), as JSON or a table.
import { introspect as describe, type InterfaceDescription } from '../client/typed.js';
import { connectFromFlags, printJson } from './connect-flags.js';
import { channelArg } from './messaging.js';
import { CLIENT_FLAGS, UsageError, numberFlag, stringFlag, type Command } from './table.js';

/** The `--format text` table, as `busctl introspect` prints one: NAME TYPE SIGNATURE, the interface first. */
export function describeAsText(d: InterfaceDescription): string {
  const rows: Array<[string, string, string]> = [['NAME', 'TYPE', 'SIGNATURE']];
  if (d.interface !== undefined) rows.push([d.interface, 'interface', '-']);
  for (const m of d.methods) rows.push([m.name, 'method', m.signature]);
  for (const s of d.signals) rows.push([s.name, 'signal', s.signature]);
  const width = [0, 1].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => `${r[0].padEnd(width[0]!)}  ${r[1].padEnd(width[1]!)}  ${r[2]}`).join('\n') + '\n';
}

export const introspect: Command = {
  name: 'introspect',
  summary: 'Print the methods and signals of the object exposed on CHANNEL (JSON, or a table with --format text).',
  usage: 'qcop introspect CHANNEL [--format json|text] [--timeout S]',
  flags: {
    ...CLIENT_FLAGS,
    format: { type: 'string', description: 'json (default: one JSON object) or text (a NAME TYPE SIGNATURE table)' },
    timeout: { type: 'string', description: 'seconds to wait for the answer (default 5)' },
  },
  positionals: { min: 1, max: 1 },
  async run(args) {
    const channel = channelArg(args.positionals[0]!, true);
    const format = stringFlag(args, 'format') ?? 'json';
    if (format !== 'json' && format !== 'text') throw new UsageError(`--format must be json or text, not '${format}'`);
    const timeout = numberFlag(args, 'timeout', { min: 0.001 });
    const client = await connectFromFlags(args);
    try {
      const d = await describe(client, channel, timeout === undefined ? {} : { timeoutMs: timeout * 1000 });
      if (format === 'json') printJson(d);
      else process.stdout.write(describeAsText(d));
      return 0;
    } finally {
      await client.close();
    }
  },
};
