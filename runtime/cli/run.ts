// Running one command: its flags, --help, and the mapping of errors to stderr and exit codes (SPEC §4).
import { QcopError } from '../protocol/errors.js';
import { UsageError, helpText, parseCommandArgs, type Command } from './table.js';

/** Prints an error as `CODE: reason` and returns the exit code: 2 for usage (EINVAL), 1 otherwise. */
export function report(err: unknown): number {
  if (err instanceof QcopError) {
    process.stderr.write(`${err.message}\n`);
    return err instanceof UsageError || err.code === 'EINVAL' ? 2 : 1;
  }
  process.stderr.write(`EINTERNAL: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}

/** Runs `cmd` with its arguments and the global flags given before it; resolves with the exit code. */
export async function runCommand(cmd: Command, argv: string[], globals: Record<string, string> = {}): Promise<number> {
  try {
    const args = parseCommandArgs(cmd, argv, globals);
    if (args.flags.help) {
      process.stdout.write(helpText(cmd));
      return 0;
    }
    return await cmd.run(args);
  } catch (err) {
    return report(err);
  }
}
