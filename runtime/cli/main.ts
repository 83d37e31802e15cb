// The `qcop` command: a table of commands over the library; exit codes 0 ok, 1 failed, 2 usage (SPEC §4).
import { broker } from './broker-command.js';
import { registered, stats, watch } from './inspect.js';
import { call, listen, send } from './messaging.js';
import { shm } from './shm-command.js';
import { report, runCommand } from './run.js';
import { UsageError, helpText, type Command } from './table.js';

const COMMANDS: Command[] = [broker, send, listen, call, registered, watch, stats, shm];

function globalHelp(): string {
  const lines = ['usage: qcop COMMAND [ARGS] [--socket PATH]', '', 'Qt QCOP-style messaging: named channels routed by a broker.', '', 'commands:'];
  for (const c of COMMANDS) lines.push(`  ${c.name.padEnd(11)} ${c.summary}`);
  lines.push('', 'qcop COMMAND --help shows a command\'s flags. Output for programs is JSON; errors go to stderr as "CODE: reason".');
  lines.push('Exit codes: 0 ok, 1 operation failed (no listener, timeout, no broker...), 2 usage error.');
  return lines.join('\n') + '\n';
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write(topic ? helpText(topic) : globalHelp());
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) return report(new UsageError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`));
  return runCommand(cmd, rest);
}
