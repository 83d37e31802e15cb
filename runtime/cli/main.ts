// The `qcop` command: a table of commands over the library; exit codes 0 ok, 1 failed, 2 usage (SPEC §4).
import { acl } from './acl-command.js';
import { broker } from './broker-command.js';
import { introspect } from './introspect-command.js';
import { record, replay } from './record-command.js';
import { registered, stats, watch } from './inspect.js';
import { monitor, top } from './monitor-command.js';
import { call, listen, send } from './messaging.js';
import { shm } from './shm-command.js';
import { report, runCommand } from './run.js';
import { CLIENT_FLAGS, GLOBAL_FLAGS, UsageError, helpText, type Command } from './table.js';

const COMMANDS: Command[] = [broker, send, listen, call, registered, watch, stats, monitor, top, shm, acl, record, replay, introspect];

function globalHelp(): string {
  const lines = ['usage: qcop [--socket PATH | --url URL] COMMAND [ARGS] [FLAGS]', '', 'Qt QCOP-style messaging: named channels routed by a broker.', '', 'commands:'];
  for (const c of COMMANDS) lines.push(`  ${c.name.padEnd(11)} ${c.summary}`);
  lines.push('', 'global flags (before or after the command):');
  for (const f of GLOBAL_FLAGS) lines.push(`  --${`${f} ${f === 'socket' ? 'PATH' : 'URL'}`.padEnd(12)} ${CLIENT_FLAGS[f]!.description}`);
  lines.push('', 'qcop COMMAND --help shows a command\'s flags. Output for programs is JSON; errors go to stderr as "CODE: reason".');
  lines.push('Exit codes: 0 ok, 1 operation failed (no listener, timeout, no broker...), 2 usage error.');
  return lines.join('\n') + '\n';
}

/** Takes the global flags (`--socket P`, `--url=U`) off the front of `argv`; what remains starts with the command. */
function leadingGlobals(argv: string[]): { globals: Record<string, string>; rest: string[] } {
  const globals: Record<string, string> = {};
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('--') && argv[i] !== '--help'; i++) {
    const [flag, inline] = argv[i]!.slice(2).split(/=(.*)/s);
    const name = GLOBAL_FLAGS.find((f) => f === flag);
    if (!name) throw new UsageError(`unknown global flag '${argv[i]}' (before the command: ${GLOBAL_FLAGS.map((f) => `--${f}`).join(', ')})`);
    const value = inline ?? argv[++i];
    if (!value || (inline === undefined && value.startsWith('-'))) throw new UsageError(`--${name} needs a value`);
    if (name in globals) throw new UsageError(`--${name} given twice`);
    globals[name] = value;
  }
  if (Object.keys(globals).length > 0 && i === argv.length) {
    throw new UsageError(`missing command after the global flags: usage: qcop [--socket PATH | --url URL] COMMAND [ARGS]`);
  }
  return { globals, rest: argv.slice(i) };
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = leadingGlobals(argv);
  } catch (err) {
    return report(err);
  }
  const [name, ...rest] = parsed.rest;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write(topic ? helpText(topic) : globalHelp());
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) return report(new UsageError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`));
  return runCommand(cmd, rest, parsed.globals);
}
