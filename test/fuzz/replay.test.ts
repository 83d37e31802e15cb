// Regression: every input under test/fuzz/crashes is replayed against a fresh broker, whole and byte by byte; the broker must survive.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, startBroker } from '../../runtime/index.js';
import { RawConn, K } from './raw.js';

const CRASH_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crashes');
const DRIP_LIMIT = 4096; // inputs up to this size are also replayed one byte per write
const ANSWER_MS = 3000;

const files = fs.existsSync(CRASH_DIR) ? fs.readdirSync(CRASH_DIR).filter((f) => f.endsWith('.bin')).sort() : [];

test('the crash folder holds at least one input to replay', () => {
  assert.ok(files.length > 0, `no .bin files in ${CRASH_DIR}`);
});

async function replay(input: Buffer, drip: boolean): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-replay-'));
  const socket = path.join(dir, 'qcop.sock');
  const thrown: Error[] = [];
  const onUncaught = (e: Error) => thrown.push(e);
  process.on('uncaughtException', onUncaught);
  const broker = await startBroker({ socket, logLevel: 'error' });
  const rx = await connect({ socket, name: 'sentinel-rx', reconnect: false });
  const tx = await connect({ socket, name: 'sentinel-tx', reconnect: false });
  try {
    const got: number[] = [];
    await rx.listen('sentinel/x', (m) => got.push(m.data as number)).ready;
    tx.send('sentinel/x', 'seq(int)', 0);

    const raw = await RawConn.open(socket);
    await raw.write(input, drip ? () => 1 : () => input.length, drip);
    // Give the broker time to act on everything: it answers, closes, or waits for more bytes.
    await raw.until(() => raw.closed, drip ? 500 : ANSWER_MS / 6);
    raw.socket.end();
    assert.ok(await raw.until(() => raw.closed, ANSWER_MS), 'the broker did not close the connection after our end()');
    assert.is(raw.malformed, null, 'the broker sent a malformed stream');
    assert.ok(raw.frames.every((f) => f.kind >= K.Welcome), 'the broker sent a client-side kind');

    tx.send('sentinel/x', 'seq(int)', 1);
    await tx.flush();
    await rx.stats();
    assert.equal(got, [0, 1], 'the sentinel pair noticed something');

    const fresh = await connect({ socket, name: 'fresh', reconnect: false });
    assert.is(await fresh.deliver('sentinel/x', 'seq(int)', 2), 1);
    await fresh.close();

    const deadline = Date.now() + 2000;
    while ((broker.stats() as { clients: number }).clients !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.is((broker.stats() as { clients: number }).clients, 2, 'connections left behind');
    assert.equal(thrown.map((e) => e.message), [], 'the broker threw');
  } finally {
    await tx.close();
    await rx.close();
    await broker.close();
    process.off('uncaughtException', onUncaught);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const file of files) {
  const input = fs.readFileSync(path.join(CRASH_DIR, file));
  test(`replaying ${file} (${input.length} bytes) in one write leaves the broker serving`, () => replay(input, false));
  if (input.length <= DRIP_LIMIT) {
    test(`replaying ${file} one byte per write leaves the broker serving`, () => replay(input, true));
  }
}

test.run();
