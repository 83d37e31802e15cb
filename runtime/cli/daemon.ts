// The `qcopd` command: `qcop broker` alone, so the daemon loads none of the client commands' code at start.
import { broker } from './broker-command.js';
import { runCommand } from './run.js';

/** Runs the broker with `argv` (flags of `qcop broker`); resolves with the exit code. */
export function daemon(argv: string[]): Promise<number> {
  return runCommand(broker, argv);
}
