// Whatever answers on a socket path may not be a broker (SPEC §8): a client bounds the frames it
// reads by a small limit before the welcome, then by what the broker announced, never above its own
// cap, and fails the connection with EMSGSIZE instead of allocating what the header claims.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, Proc, cleanup, runCli, spawnClient, tempDir } from '../helpers/procs.js';
import { assertHealthy, scene, type Scene } from './harness.js';

let s: Scene;
test.before.each(async () => {
  s = await scene();
});
test.after.each(() => cleanup());

async function fake(mode: string): Promise<string> {
  const socket = path.join(tempDir(), 'fake.sock');
  const p = new Proc(process.execPath, [path.join(FIXTURES, 'fake-broker.mjs'), socket, mode]);
  await p.waitJson((v) => v.ev === 'listening', 10000, 'the fake broker');
  return socket;
}

test('a hello answered with a 1 GiB frame header: qcop send fails with EMSGSIZE at once, nothing allocated', async () => {
  const socket = await fake('huge');
  const r = await runCli(['send', 'x/y', 'm()', '--socket', socket]);
  assert.is(r.code, 1, r.stdout);
  assert.match(r.stderr, `EMSGSIZE: from ${socket}: frame length 1073741824 exceeds the limit of 65536 bytes`);
  await assertHealthy(s);
});

test('after a welcome: a frame above the announced limit (at least 1 MiB), or above the client cap of 64 MiB, fails the connection', async () => {
  for (const [mode, length, limit] of [['welcome:4096:2097152', 2097152, 1 << 20], ['welcome:1073741824:104857600', 104857600, 64 << 20]] as const) {
    const socket = await fake(mode);
    const client = await spawnClient(socket, 'victim');
    client.command({ op: 'listen', channel: 'x/y', tag: 1 });
    const err = await client.waitJson((v) => v.ev === 'error', 10000, 'the client to refuse the frame');
    assert.is(err.code, 'EMSGSIZE');
    assert.match(err.message, `frame length ${length} exceeds the limit of ${limit} bytes`);
    await client.waitJson((v) => v.ev === 'disconnected', 10000, 'the connection to be closed');
  }
  await assertHealthy(s);
});

test.run();
