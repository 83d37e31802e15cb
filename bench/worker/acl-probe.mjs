// Run as qcop-acl's client user: can it read the worker's files, reach qcopd, and is the policy enforced on it?
// argv[2] = broker socket, argv[3] = the uid it must run as; prints one JSON line { enforced, why }.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const [socket, wantUid] = process.argv.slice(2);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
let client = null;
const out = async (v) => {
  process.stdout.write(JSON.stringify(v) + '\n');
  await Promise.race([client?.close(), new Promise((r) => setTimeout(r, 500))]).catch(() => {});
  process.exit(0);
};
setTimeout(() => out({ enforced: false, why: 'probe timed out' }), 5000).unref();
try {
  const uid = process.getuid();
  if (String(uid) !== wantUid) await out({ enforced: false, why: `the probe runs as uid ${uid}, not ${wantUid}` });
  // What a worker loads: its own code, the runtime, the runtime's dependencies.
  const needed = ['bench/worker/worker.mjs', 'bench/worker/transports.mjs', 'bench/baseline/raw-wire.mjs', 'dist/runtime/index.js', 'node_modules', 'package.json'];
  for (const p of needed) {
    try {
      fs.accessSync(path.join(ROOT, p), fs.constants.R_OK);
    } catch (err) {
      await out({ enforced: false, why: `uid ${uid} cannot read ${path.join(ROOT, p)} (${err.code}): the workers could not start as that user` });
    }
  }
  await import('./transports.mjs');
  const { connect } = await import('../../dist/runtime/index.js');
  client = await connect({ socket, name: 'acl-probe', shm: false, reconnect: false, waitForBroker: 3000 });
  const errors = [];
  client.on('error', (err) => errors.push(err));
  // Granted by the last rule: listen and send on bench/ping, the message must come back.
  const data = Buffer.from('probe');
  const got = new Promise((resolve) => client.listen('bench/ping', (m) => resolve(m.data)).ready.then(() => client.send('bench/ping', 'probe', data)));
  const back = await Promise.race([got, new Promise((r) => setTimeout(r, 2000, null))]);
  if (!back || Buffer.compare(Buffer.from(back), data) !== 0) await out({ enforced: false, why: `a message on bench/ping did not come back to uid ${uid} (errors: ${errors.map((e) => `${e.code} ${e.message}`).join('; ') || 'none'})` });
  // Granted by no rule: the broker must answer EACCES.
  client.send('bench-denied/x', 'probe', data);
  await client.flush();
  for (let i = 0; i < 100 && !errors.some((e) => e.code === 'EACCES'); i++) await new Promise((r) => setTimeout(r, 10));
  if (!errors.some((e) => e.code === 'EACCES')) await out({ enforced: false, why: `a send outside the policy by uid ${uid} was not refused: the policy is not applied to the clients (errors: ${errors.map((e) => e.code).join(', ') || 'none'})` });
  await out({ enforced: true, why: '' });
} catch (err) {
  await out({ enforced: false, why: `probe failed: ${err.code ?? ''} ${err.message}`.trim() });
}
