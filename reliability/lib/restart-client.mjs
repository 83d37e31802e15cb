// A restart-scenario client (reliability/scenarios/restart.ts): listens on rel/r/<i>, sends a numbered message every
// 20 ms to rel/r/<i+1>, and keeps every count the accounting needs: accepted, refused (with codes), unconfirmed (from
// 'disconnected'), routed and unrouted (from flushes), received, duplicates, probes. Commands on stdin: stop, report.
import * as readline from 'node:readline';
import { connect } from '../../dist/runtime/index.js';

const [socket, index, total] = process.argv.slice(2).map((v, i) => (i === 0 ? v : Number(v)));
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const client = await connect({ socket, name: `r${index}`, waitForBroker: 20000 });
const c = { accepted: 0, refused: {}, unconfirmed: 0, flushed: 0, unrouted: 0, flushErrors: 0, received: 0, duplicates: 0, probes: 0, disconnects: 0, reconnects: 0, errors: {} };
const seen = new Set();
client.on('error', (e) => (c.errors[e.code] = (c.errors[e.code] ?? 0) + 1));
client.on('disconnected', (info) => {
  c.disconnects++;
  c.unconfirmed += info.unconfirmed;
});
client.on('reconnected', () => {
  c.reconnects++;
  out({ ev: 'reconnected', at: Date.now() });
});
await client.listen(`rel/r/${index}`, (m) => {
  if (m.message === 'probe') return void c.probes++;
  if (seen.has(m.data)) c.duplicates++;
  else seen.add(m.data);
  c.received++;
}).ready;
const to = `rel/r/${(index + 1) % total}`;
let seq = 0;
let flushing = false;
const flush = async () => {
  flushing = true;
  try {
    const r = await client.flush();
    c.flushed += r.messages;
    c.unrouted += r.unrouted;
  } catch {
    c.flushErrors++; // the connection was lost under it: the sends are in a 'disconnected' count
  } finally {
    flushing = false;
  }
};
const sender = setInterval(() => {
  try {
    client.send(to, 'n', seq++);
    c.accepted++;
  } catch (e) {
    c.refused[e.code] = (c.refused[e.code] ?? 0) + 1;
  }
}, 20);
const flusher = setInterval(() => { if (!flushing) void flush(); }, 500);
out({ ev: 'ready', pid: process.pid });

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === 'stop') {
    clearInterval(sender);
    clearInterval(flusher);
    while (flushing) await new Promise((r) => setTimeout(r, 5));
    // Until a flush is answered on a connection that stays up, everything since is in `unconfirmed`.
    for (let tries = 0; tries < 50; tries++) {
      const before = c.flushErrors;
      await flush();
      if (c.flushErrors === before) break;
    }
    out({ ev: 'stopped', ...c });
  } else if (cmd.op === 'report') {
    out({ ev: 'report', ...c });
  }
});
