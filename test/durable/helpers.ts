// Durable-delivery test plumbing: a broker with a config file, and small listener programs (.mjs) run as processes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Proc, QCOPD, ROOT, socketAnswers, spawnBroker, tempDir, waitFor } from '../helpers/procs.js';

export const DIST = path.join(ROOT, 'dist/runtime/index.js');

/** Starts qcopd with `config` written to a config file; stateDir defaults to a folder of `dir`. */
export async function durableBroker(dir: string, config: Record<string, unknown>, socket = path.join(dir, 'qcop.sock'), env?: NodeJS.ProcessEnv): Promise<Proc & { socket: string }> {
  const file = path.join(dir, 'qcopd.json');
  fs.writeFileSync(file, JSON.stringify({ stateDir: path.join(dir, 'state'), ...config }));
  if (!env) return spawnBroker(['--config', file], socket);
  const p = new Proc(process.execPath, [QCOPD, '--socket', socket, '--config', file], env) as Proc & { socket: string };
  p.socket = socket;
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`broker exited: ${p.stderr}`);
    return socketAnswers(socket);
  }, 10000, 'the broker socket');
  return p;
}

/**
 * A listener program: listens on `channel`, prints one JSON line per message
 * `{ n, message, data, redelivered, retained }`, and acknowledges after `holdMs` (0: at once).
 */
export function listenerScript(dir: string, holdMs = 0): string {
  const file = path.join(tempDir(), 'listener.mjs');
  fs.writeFileSync(file, `import { connect } from ${JSON.stringify(DIST)};
const [socket, channel] = process.argv.slice(2);
const client = await connect({ socket, name: 'durable-listener' });
let n = 0;
const l = client.listen(channel, (msg) => {
  process.stdout.write(JSON.stringify({ n: ++n, channel: msg.channel, message: msg.message, data: msg.data, redelivered: msg.redelivered, retained: msg.retained }) + '\\n');
  if (${holdMs} > 0) return new Promise((r) => setTimeout(r, ${holdMs}));
});
await l.ready;
process.stdout.write(JSON.stringify({ ready: true }) + '\\n');
`);
  void dir;
  return file;
}
