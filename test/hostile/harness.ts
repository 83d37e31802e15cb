// Hostile-client tests (SPEC §8): a spawned broker, a bystander listener process, and the check
// that after an attack the broker still answers send/listen/call and the bystander lost nothing.
import * as path from 'node:path';
import * as assert from 'uvu/assert';
import { FIXTURES, Proc, QCOP, runCli, spawnBroker, spawnClient, waitFor } from '../helpers/procs.js';

export interface Scene {
  broker: Proc & { socket: string };
  /** A client process listening quietly on `bystander/feed`, counting and checking order. */
  bystander: Proc;
  /** A client process that sends to the bystander. */
  sender: Proc;
  /** Messages sent to the bystander so far. */
  sent: number;
}

let tags = 0;
/** Runs one fixture command (test/fixtures/client.mjs) and waits for its result. */
export async function op(p: Proc, cmd: Record<string, unknown>, timeoutMs = 10000): Promise<any> {
  const tag = ++tags;
  p.command({ ...cmd, tag });
  const r = await p.waitJson((v) => v.tag === tag, timeoutMs, `${cmd.op} result`);
  if (r.ev === 'failed') throw Object.assign(new Error(`${cmd.op}: ${r.code} ${r.message}`), { code: r.code });
  return r.result;
}

/** A broker (extra flags allowed) with a bystander listener and its sender, both real processes. */
export async function scene(brokerArgs: string[] = []): Promise<Scene> {
  const broker = await spawnBroker(['--log-level', 'error', ...brokerArgs]);
  const bystander = await spawnClient(broker.socket, 'bystander');
  await op(bystander, { op: 'listen', channel: 'bystander/feed', quiet: true });
  const sender = await spawnClient(broker.socket, 'bystander-sender');
  const s: Scene = { broker, bystander, sender, sent: 0 };
  await traffic(s, 100);
  return s;
}

/** Sends `n` more numbered messages to the bystander and waits until it has every one, in order. */
export async function traffic(s: Scene, n: number, timeoutMs = 15000): Promise<void> {
  await op(s.sender, { op: 'send', channel: 'bystander/feed', message: 'n(int)', count: n, numbered: true, first: s.sent, data: 0 });
  await op(s.sender, { op: 'flush' });
  s.sent += n;
  let got: any;
  await waitFor(async () => {
    got = await op(s.bystander, { op: 'count' });
    return got.count >= s.sent;
  }, timeoutMs, `the bystander's ${s.sent} messages`);
  assert.is(got.count, s.sent, 'the bystander got every message once');
  assert.ok(got.inOrder, 'the bystander got them in order');
}

/**
 * The check every hostile test ends with: the broker process is alive, a bystander that was
 * listening through the attack lost nothing, and fresh clients can still send, listen and call
 * (through the `qcop` CLI, as a user would).
 */
export async function assertHealthy(s: Scene): Promise<void> {
  assert.is(s.broker.child.exitCode, null, `the broker is still running (stderr: ${s.broker.stderr.slice(-400)})`);
  assert.is(s.broker.child.signalCode, null, 'the broker was not killed by a signal');
  const lost = s.bystander.json().filter((v) => v.ev === 'lost' || v.ev === 'disconnected');
  assert.equal(lost, [], 'the bystander was neither told of losses nor disconnected');
  await traffic(s, 500);

  const listener = new Proc(process.execPath, [QCOP, 'listen', 'healthy/ch', '--count', '1', '--timeout', '10', '--socket', s.broker.socket]);
  await waitFor(async () => (await runCli(['registered', 'healthy/ch', '--socket', s.broker.socket])).code === 0, 10000, 'the new listener registered');
  const sent = await runCli(['send', 'healthy/ch', 'ping()', '1', '--socket', s.broker.socket]);
  assert.is(sent.code, 0, `qcop send works (${sent.stderr})`);
  assert.equal(JSON.parse(sent.stdout), { receivers: 1 });
  const heard = await listener.exited;
  assert.is(heard.code, 0, `qcop listen works (${listener.stderr})`);
  assert.equal(listener.json()[0], { channel: 'healthy/ch', message: 'ping()', data: 1 });

  const replier = new Proc(process.execPath, [path.join(FIXTURES, 'replier.mjs'), s.broker.socket]);
  await replier.waitJson((v) => v.ready === true, 10000, 'the replier');
  const called = await runCli(['call', 'svc/clock', 'now()', '7', '--timeout', '10', '--socket', s.broker.socket]);
  assert.is(called.code, 0, `qcop call works (${called.stderr})`);
  assert.equal(JSON.parse(called.stdout), { echo: 7 });
  replier.kill('SIGTERM');
  await replier.exited;
}
