// Runs inside a private mount namespace whose /dev/shm is a small tmpfs (reliability/scenarios/exhaust.ts): a broker,
// a sender and a listener; /dev/shm filled to `room` bytes from full; large messages sent; then the filler removed
// and more sent. Prints one JSON line with every count.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, startBroker, SharedMemory, listSegments } from '../../dist/runtime/index.js';
import { native } from '../../dist/runtime/native/index.js';

const room = Number(process.argv[2] ?? 256 * 1024);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-rel-shm-'));
const socket = path.join(dir, 'qcop.sock');
const out = {};
const broker = await startBroker({ socket, logLevel: 'error' });
const rx = await connect({ socket, name: 'rx' });
const tx = await connect({ socket, name: 'tx' });
const errors = {};
tx.on('error', (e) => (errors[e.code] = (errors[e.code] ?? 0) + 1));
rx.on('error', () => {});
let got = 0;
let shared = 0;
await rx.listen('big', (m) => { got++; if (m.shared) shared++; }).ready;
// Fill /dev/shm to `room` bytes from full.
const filler = '/dev/shm/rel-filler';
const st = fs.statfsSync('/dev/shm');
const free = Number(st.bavail) * Number(st.bsize);
const fd = fs.openSync(filler, 'w');
const chunk = Buffer.alloc(1 << 20);
let left = free - room;
while (left > 0) {
  const n = fs.writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  left -= n;
}
fs.closeSync(fd);
out.filled = free - room;
let accepted = 0;
const refused = {};
const messages = {};
for (const size of [300 * 1024, 2 << 20]) {
  for (let i = 0; i < 10; i++) {
    try {
      tx.send('big', 'blob', Buffer.alloc(size, i));
      accepted++;
    } catch (e) {
      refused[e.code] = (refused[e.code] ?? 0) + 1;
      messages[e.code] ??= e.message;
    }
  }
}
const flushed = await tx.flush();
await rx.flush();
await new Promise((r) => setTimeout(r, 1000));
let createCode = null;
try {
  (await SharedMemory.create('rel-too-big', 4 << 20)).detach();
} catch (e) {
  createCode = e.code;
}
Object.assign(out, { accepted, refused, refusedMessages: messages, errorsWhileFull: { ...errors }, receivedWhileFull: got, sharedWhileFull: shared, flushed, pool: tx.poolInUse, faults: native().guardFaults(), createCode });
fs.rmSync(filler);
const gotBefore = got;
const sharedBefore = shared;
for (let i = 0; i < 10; i++) {
  if (!tx.send('big', 'blob', Buffer.alloc(300 * 1024, i))) await new Promise((r) => tx.once('drain', r));
}
await tx.flush();
for (const end = Date.now() + 5000; got - gotBefore < 10 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
Object.assign(out, { receivedAfter: got - gotBefore, sharedAfter: shared - sharedBefore });
await tx.close();
await rx.close();
await broker.close();
out.leftAfter = listSegments().length;
fs.rmSync(dir, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ ev: 'result', ...out }) + '\n');
