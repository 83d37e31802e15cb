// A storm client (reliability/scenarios/storm.ts, test/shm/departed.test.ts): holds every kind of broker and
// shared-memory state at once — listener, watch, small and 200 KiB sends, a call in flight, a pool loan, a segment
// lock, semaphore units — prints {"ev":"busy"} and keeps the traffic going until it is SIGKILLed.
// argv: socket tag segmentKey semaphoreKey [own] (keys may be '-' to skip; `own`: it also creates a segment, locks it,
// and a semaphore of its own, which nothing but the broker's reclaim of departed clients would remove).
import { connect, SharedMemory, SystemSemaphore } from '../../dist/runtime/index.js';

const [socket, tag, segKey = '-', semKey = '-', own = ''] = process.argv.slice(2);
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const client = await connect({ socket, name: `storm-${tag}`, waitForBroker: 10000 });
client.on('error', () => {});
const l = client.listen(`storm/${tag}/#`, () => {});
const w = client.watch('rel/bystander', () => {});
await Promise.all([l.ready, w.ready]);
const held = [];
if (segKey !== '-') {
  const seg = await SharedMemory.attach(segKey);
  // Whoever gets the shared lock first holds it until the kill: the next holder finds it recovered.
  await seg.lock({ timeoutMs: 0 }).catch(() => null);
  held.push(seg);
}
if (semKey !== '-') {
  const sem = await SystemSemaphore.open(semKey);
  if (sem.tryAcquire()) held.push(sem);
}
if (own === 'own') {
  const mine = await SharedMemory.create(`storm-own/${tag}`, 65536);
  await mine.lock();
  const sem = await SystemSemaphore.open(`storm-own-sem/${tag}`, { initial: 2 });
  await sem.acquire();
  held.push(mine, sem);
}
const big = Buffer.alloc(200 * 1024, 7);
const loan = client.loan(300 * 1024);
if (loan) loan.fill(1);
// A call nobody answers quickly: pending in the broker when the kill comes.
client.call('rel/slow', 'wait', tag, { timeoutMs: 60000 }).catch(() => {});
let round = 0;
const tick = () => {
  round++;
  client.send(`storm/${tag}/self`, 'small', round);
  client.send('rel/sink', 'small', [tag, round]);
  if (round % 5 === 0) client.send('rel/sink', 'large', big);
  if (round % 10 === 0) client.call('rel/echo', 'ping', round, { timeoutMs: 5000 }).catch(() => {});
};
tick();
out({ ev: 'busy', pid: process.pid, loan: loan !== null, held: held.length, pool: client.poolInUse });
setInterval(tick, 5);
