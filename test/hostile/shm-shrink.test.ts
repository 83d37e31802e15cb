// A producer that shrinks its own pool segment under its descriptors (SPEC §8): neither the broker nor any
// receiver faults (SIGBUS); the messages it spoiled are refused or counted as lost, never delivered as zeros.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { escapeKey } from '../../runtime/shm/names.js';
import { cleanup, Proc, ROOT, runCli, waitFor } from '../helpers/procs.js';
import { assertHealthy, scene, type Scene } from './harness.js';

const ATTACKER = path.join(ROOT, 'test/hostile/fixtures/shm-attacker.mjs');
const QCOP = path.join(ROOT, 'bin/qcop.js');
const PREFIX = `hostile-shm-${process.pid}`;
const SLOT_DATA = (100 << 10) - 5;
let keys = 0;
let s: Scene;

/** Runs the attacker fixture with `steps` and waits for it to finish them; returns its JSON lines. */
async function attack(steps: string[]): Promise<{ lines: any[]; proc: Proc }> {
  const proc = new Proc(process.execPath, [ATTACKER, s.broker.socket, `${PREFIX}/pool-${++keys}`, ...steps]);
  await untilDone(proc);
  return { lines: proc.json(), proc };
}

/** Waits for the attacker's last step; fails at once, saying so, when the broker dies meanwhile. */
function untilDone(proc: Proc): Promise<unknown> {
  return Promise.race([
    proc.waitJson((v) => v.step === 'done', 20000, 'the attacker'),
    s.broker.exited.then((r) => { throw new Error(`the broker died (${r.signal ?? `exit ${r.code}`}): ${s.broker.stderr.slice(-300)}`); }),
  ]);
}

/** `qcop listen` on `channel` (QCOP_NATIVE=off in `env`: a receiver without shared memory), once registered. */
async function listener(channel: string, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = new Proc(process.execPath, [QCOP, 'listen', channel, '--socket', s.broker.socket], env);
  await waitFor(async () => (await runCli(['registered', channel, '--socket', s.broker.socket])).code === 0, 10000, 'the listener');
  return p;
}

/** Every message a `qcop listen` printed carries the producer's bytes (0x5a), never zeros. */
function assertIntact(p: Proc): number {
  const got = p.json().filter((v) => v.channel !== undefined);
  for (const line of got) {
    const bytes = Buffer.from(line.data.$bytes, 'base64');
    assert.ok(bytes.length === SLOT_DATA || bytes.length === 200 << 10, `a whole message (${bytes.length} bytes)`);
    assert.ok(bytes.every((b) => b === bytes[0]) && bytes[0] !== 0, 'the producer\'s bytes, not zeros');
  }
  return got.length;
}

async function shmStats(): Promise<Record<string, number>> {
  const r = await runCli(['stats', '--socket', s.broker.socket]);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).shm;
}

function alive(p: Proc): void {
  assert.is(p.child.exitCode, null, `still running (stderr: ${p.stderr.slice(-300)})`);
  assert.is(p.child.signalCode, null, 'not killed by a signal');
}

test.before.each(async () => {
  s = await scene();
});
test.after.each(() => {
  cleanup();
  const tag = escapeKey(PREFIX);
  for (const e of fs.readdirSync('/dev/shm')) if (e.includes(tag)) fs.rmSync(`/dev/shm/${e}`, { force: true });
});

test('shrunk to 0 bytes, then a descriptor to a receiver without shared memory: refused (EBADSLOT), broker healthy', async () => {
  const victim = await listener('victim/inline', { QCOP_NATIVE: 'off' });
  const { lines } = await attack(['announce', 'send:victim/inline:0', 'shrink', 'send:victim/inline:1']);
  assert.equal(lines.map((l) => [l.step, l.code]).slice(0, 4), [['announce', 'ok'], ['send:victim/inline:0', 'ok'], ['shrink', undefined], ['send:victim/inline:1', 'EBADSLOT']]);
  assert.is(lines[1].receivers, 1, 'the first message went to the receiver inline');
  await victim.waitJson((v) => v.channel === 'victim/inline', 10000, 'the first message');
  assert.is(assertIntact(victim), 1);
  assert.ok((await shmStats()).shrunk >= 1, 'the refusal is counted');
  alive(victim);
  await assertHealthy(s);
});

test('shrunk to 0 bytes, then the connection simply ends: the broker lets go of the segment without faulting', async () => {
  const { lines, proc } = await attack(['announce', 'send:nobody/here:0', 'shrink', 'close']);
  assert.is(lines[0].code, 'ok');
  await waitFor(async () => (await shmStats()).segments === 0, 10000, 'the broker let go of the pool');
  // Letting go writes the segment's header (its attacher slot): that access faulted, and the guard took it.
  assert.ok((await shmStats()).faults >= 1, 'the broker\'s fault guard caught the access');
  alive(proc);
  await assertHealthy(s);
});

test('shrunk after a normal `qcop listen` got one large message, then more sent: the listener lives, prints no zeros, hears of the loss', async () => {
  const victim = await listener('victim/shm');
  const first = new Proc(process.execPath, [ATTACKER, s.broker.socket, `${PREFIX}/pool-${++keys}`, 'announce', 'send:victim/shm:0', 'wait', 'shrink', 'send:victim/shm:1']);
  await victim.waitJson((v) => v.channel === 'victim/shm', 10000, 'the first message');
  first.command({ go: true });
  await untilDone(first);
  assert.equal(first.json().map((l) => l.code), ['ok', 'ok', undefined, undefined, 'EBADSLOT', undefined]);
  // Mapped by the listener, then a burst shrunk as soon as the broker routed its last message: the
  // listener is still reading some of them through its mapping (the fault guard's case).
  const burst = new Proc(process.execPath, [ATTACKER, s.broker.socket, `${PREFIX}/pool-${++keys}`, 'announce', 'send:victim/shm:0', 'wait', 'send:victim/shm:1:30', 'shrink']);
  await waitFor(() => victim.json().length >= 2, 10000, 'the burst\'s first message');
  burst.command({ go: true });
  await untilDone(burst);
  assert.equal(burst.json().map((l) => l.code), ['ok', 'ok', undefined, 'ok', undefined, undefined]);
  const big = await runCli(['send', 'victim/shm', 'blob', '--raw', '--socket', s.broker.socket], {}, Buffer.alloc(200 << 10, 7));
  assert.is(big.code, 0, big.stderr);
  await victim.waitJson((v) => v.message === 'blob' && v.data.$bytes.length > 200_000, 15000, 'a normal large message after the attack');
  alive(victim);
  const printed = assertIntact(victim);
  assert.ok(printed >= 3 && printed <= 33, `${printed} messages printed`);
  const told = (victim.stderr.match(/message\(s\) lost/g) ?? []).length;
  assert.is(printed + told, 33, `every burst message was either printed intact or told lost (stderr: ${victim.stderr.slice(-300)})`);
  await assertHealthy(s);
});

test.run();
