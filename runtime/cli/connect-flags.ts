// How a CLI command reaches the broker: --socket, --url, QCOP_SOCKET, the default path.
import { connect } from '../client/connect.js';
import type { Client } from '../client/client.js';
import type { ParsedArgs } from './table.js';

/** Connects as the CLI does: one attempt, no reconnection unless the command streams. */
export function connectFromFlags(args: ParsedArgs, streaming = false): Promise<Client> {
  const socket = typeof args.flags.socket === 'string' ? args.flags.socket : undefined;
  const url = typeof args.flags.url === 'string' ? args.flags.url : undefined;
  return connect({ socket, url, name: `qcop-cli`, reconnect: streaming });
}

/** Writes one JSON value as a line on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}
