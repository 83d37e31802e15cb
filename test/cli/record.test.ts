// qcop record / qcop replay (SPEC §12, docs/RECORD.md): byte-identical data, timing, --map, hostile files, --duration, signals.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startBroker, type Broker } from '../../runtime/broker/broker.js';
import { connect } from '../../runtime/client/connect.js';
import type { Client } from '../../runtime/client/client.js';
import type { ReceivedMessage } from '../../runtime/client/message.js';
import { Major, putHead } from '../../runtime/protocol/cbor.js';
import { encodeControl } from '../../runtime/protocol/control.js';
import { encodeData } from '../../runtime/protocol/data.js';
import { record, replay } from '../../runtime/cli/record-command.js';
import { RecordReader, type RecordItem } from '../../runtime/cli/record-file.js';
import { runCommand } from '../../runtime/cli/run.js';
import type { Command } from '../../runtime/cli/table.js';
import { Proc, ROOT, cleanup, tempDir, waitFor } from '../helpers/procs.js';

const MiB = 1 << 20;
let broker: Broker | null = null;
let socket = '';
let dir = '';
const clients: Client[] = [];

test.before(async () => {
  dir = tempDir();
  socket = path.join(dir, 'qcop.sock');
  broker = await startBroker({ socket });
});
test.after(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  await broker?.close();
  await cleanup();
});

async function client(): Promise<Client> {
  const c = await connect({ socket });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

/** Runs a command in this process against the test broker, with its stdout and stderr captured. */
async function run(cmd: Command, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const write = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = ((chunk: string | Uint8Array) => ((out.stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((out.stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await runCommand(cmd, [...argv, '--socket', socket]);
    return { code, ...out };
  } finally {
    process.stdout.write = write.stdout;
    process.stderr.write = write.stderr;
  }
}

/** Resolves once a listener name is registered at the broker (a recorder is ready once its last pattern is). */
function registered(c: Client, name: string): Promise<void> {
  return new Promise((resolve) => {
    const w = c.watch(name, (ev) => {
      if (ev.type !== 'registered') return;
      w.close();
      resolve();
    });
  });
}

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');
/** What a listener saw of a message: channel, message and the sha1 of the raw data bytes. */
const seenLine = (m: ReceivedMessage) => `${m.channel} ${m.message} ${m.bytes.length} ${sha1(m.bytes)}`;

async function send(c: Client, channel: string, message: string, data?: unknown): Promise<void> {
  if (!c.send(channel, message, data)) await new Promise((r) => c.once('drain', r));
}

function items(file: string): { header: RecordReader['header']; items: RecordItem[] } {
  const r = RecordReader.open(file);
  try {
    const all: RecordItem[] = [];
    for (let it; (it = r.next(false)); ) all.push(it);
    return { header: r.header, items: all };
  } finally {
    r.close();
  }
}

/** The value kinds of the mixed recording: every one is sent by the library and must come back in the same bytes. */
function mixed(i: number): unknown {
  if (i === 500) return randomBytes(4 * MiB);
  if (i % 50 === 0) return randomBytes(100 * 1024);
  if (i % 100 === 25) return { blob: randomBytes(100 * 1024), n: i, list: [1, 2.5, 'x'] };
  switch (i % 12) {
    case 0: return i;
    case 1: return -i * 1000;
    case 2: return i + 0.25;
    case 3: return `text ${i} é ✓`;
    case 4: return { i, s: 'x', arr: [1, 2.5, null, true, false], nested: { deep: [i] } };
    case 5: return BigInt(i) * 10_000_000_000_000n;
    case 6: return new Date(1_700_000_000_000 + i);
    case 7: return undefined;
    case 8: return randomBytes(i % 200);
    case 9: return [i, 'a', [Buffer.from([1, 2, 3])], -0.5, 2 ** 40];
    case 10: return new Map<unknown, unknown>([[1, 'one'], ['k', i]]);
    default: return 2 ** 53 + 2 ** 20;
  }
}

test('1,000 messages of mixed sizes (small, 100 KiB, 4 MiB) are recorded once each and replayed byte-identical, in order', async () => {
  const tx = await client();
  const witness = await client();
  const seen: string[] = [];
  await witness.listen('mi?/*', (m) => seen.push(seenLine(m))).ready;
  const file = path.join(dir, 'mix.qrec');
  const ready = registered(tx, 'mix/a');
  // Two patterns match mix/a: still one item per message.
  const recording = run(record, ['mix/*', 'mix/a', '--out', file, '--count', '1000']);
  await ready;
  for (let i = 0; i < 1000; i++) await send(tx, i % 3 === 0 ? 'mix/a' : `mix/b/${i % 5}`, `m${i % 7}(x)`, mixed(i));
  await tx.flush();
  const rec = await recording;
  assert.is(rec.code, 0, rec.stderr);
  const summary = /recorded 1000 messages \((\d+) bytes\) in [\d.]+ s\n/.exec(rec.stderr);
  assert.ok(summary, rec.stderr);
  assert.is(Number(summary![1]), fs.statSync(file).size, 'the bytes said are the file');
  await waitFor(() => seen.length === 1000, 10000, 'the witness');
  await witness.close();

  const { header, items: recorded } = items(file);
  assert.equal([header['qcop-record'], header.broker, header.patterns], [1, 'qcopd', ['mix/*', 'mix/a']]);
  assert.ok(!Number.isNaN(Date.parse(header.start)) && header.host.length > 0);
  assert.is(recorded.length, 1000);
  assert.equal(recorded.map((it) => it.dataLength).filter((n) => n >= 4 * MiB).length, 1, 'the 4 MiB message');

  const rx = await client();
  const got: string[] = [];
  let shared = 0;
  await rx.listen('mix/*', (m) => {
    got.push(seenLine(m));
    if (m.shared) shared++;
  }).ready;
  const r = await run(replay, [file, '--speed', 'max']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /^replayed 1000 messages in [\d.]+ s\n$/);
  await waitFor(() => got.length === 1000, 20000, 'the replayed messages');
  for (let i = 0; i < 1000; i++) assert.is(got[i], seen[i], `message ${i}`);
  assert.ok(shared >= 20, 'large data came through shared memory');
});

test('--speed 1 keeps the recorded spacing, --speed 2 halves it: arrivals counted in 50 ms windows', async () => {
  const tx = await client();
  const file = path.join(dir, 'pace.qrec');
  const ready = registered(tx, 'pace/x');
  const recording = run(record, ['pace/x', '--out', file, '--count', '20']);
  await ready;
  for (let i = 0; i < 20; i++) {
    tx.send('pace/x', 'tick(int)', i);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.is((await recording).code, 0);
  const offsets = items(file).items.map((it) => it.offsetMicros / 1000);
  assert.ok(offsets[19]! - offsets[0]! >= 19 * 45, `recorded spacing: ${offsets.join(' ')}`);
  const rx = await client();
  for (const speed of [1, 2]) {
    const arrivals: number[] = [];
    const l = rx.listen('pace/x', () => arrivals.push(performance.now()));
    await l.ready;
    const r = await run(replay, [file, '--speed', String(speed)]);
    assert.is(r.code, 0, r.stderr);
    await waitFor(() => arrivals.length === 20, 5000, 'the replayed ticks');
    l.close();
    // Message i is expected (offset_i − offset_0) / speed after the first; count those outside their 50 ms window.
    const off = arrivals.filter((t, i) => Math.abs(t - arrivals[0]! - (offsets[i]! - offsets[0]!) / speed) > 25);
    assert.ok(off.length <= 2, `speed ${speed}: ${off.length} of 20 outside their window: ${arrivals.map((t) => Math.round(t - arrivals[0]!)).join(' ')}`);
  }
});

/** A small recording written by hand, in the format of docs/RECORD.md. */
function header(fields: Record<string, unknown> = {}): Buffer {
  return encodeControl({ 'qcop-record': 1, broker: 'qcopd', host: 'test', start: new Date(0).toISOString(), patterns: ['*'], ...fields });
}

function item(offsetMicros: number, channel: string, message: string, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const ch = Buffer.from(channel);
  const msg = Buffer.from(message);
  const b = Buffer.alloc(64 + ch.length + msg.length + data.length);
  b[0] = 0x84;
  let at = putHead(b, 1, Major.Uint, offsetMicros);
  at = putHead(b, at, Major.Text, ch.length);
  at += ch.copy(b, at);
  at = putHead(b, at, Major.Text, msg.length);
  at += msg.copy(b, at);
  at = putHead(b, at, Major.Bytes, data.length);
  b.set(data, at);
  return b.subarray(0, at + data.length);
}

test('--map rewrites channel prefixes, the first match winning; other channels are sent as recorded', async () => {
  const file = path.join(dir, 'map.qrec');
  fs.writeFileSync(file, Buffer.concat([header(), item(0, 'demo/a', 'a()', Buffer.from([0x01])), item(10, 'demo/b/c', 'c()'), item(20, 'other/x', 'x()', Buffer.from([0x61, 0x7a]))]));
  const rx = await client();
  const got: string[] = [];
  for (const p of ['demo/*', 'test/*', 'other/*']) await rx.listen(p, (m) => got.push(`${m.channel} ${m.message} ${m.bytes.toString('hex')}`)).ready;
  const r = await run(replay, [file, '--speed', 'max', '--map', 'demo/b/=test/bb/', '--map', 'demo/=test/', '--map', 'demo/a=never/']);
  assert.is(r.code, 0, r.stderr);
  await waitFor(() => got.length === 3, 5000, 'the mapped messages');
  assert.equal(got, ['test/a a() 01', 'test/bb/c c() ', 'other/x x() 617a']);
  const bad = await run(replay, [file, '--map', 'demo/=a//']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^EINVAL: --map turns 'demo\/a' .*map\.qrec, item 1\) into 'a\/\/a'/);
  assert.is((await run(replay, [file, '--map', 'demo'])).code, 2);
  assert.is((await run(replay, [file, '--speed', '0'])).code, 2);
  assert.is((await run(replay, [file, '--speed', 'fast'])).code, 2);
});

const HOSTILE: Array<[string, () => Buffer, RegExp]> = [
  ['an empty file', () => Buffer.alloc(0), /the file is empty/],
  ['JSON text', () => Buffer.from('{"qcop-record":1}\n'), /does not start with a header map/],
  ['random bytes', () => Buffer.concat([Buffer.from([0xa1]), randomBytes(4096)]), /at byte 0/],
  ['another version', () => header({ 'qcop-record': 2 }), /format version 2/],
  ['no version', () => encodeControl({ broker: 'x' }), /no "qcop-record"/],
  ['a header announcing 2^32 entries', () => Buffer.from([0xba, 0xff, 0xff, 0xff, 0xff, 0x61]), /header runs past the end of the file \(6 bytes\): .*announces/],
  ['a header cut short', () => header().subarray(0, 30), /header runs past the end of the file \(30 bytes\)/],
  ['a last item cut short', () => Buffer.concat([header(), item(0, 'h/a', 'm()', Buffer.from([1])), item(5, 'h/a', 'm()', randomBytes(300)).subarray(0, 200)]), /item 2 at byte \d+ is cut short .* hold 1 whole item/],
  ['data of 2^32 − 1 bytes in a small file', () => Buffer.concat([header(), item(0, 'h/a', 'm()').subarray(0, -1), Buffer.from([0x5a, 0xff, 0xff, 0xff, 0xff, 0])]), /item 1 at byte \d+ is cut short/],
  ['data of 2^64 − 1 bytes', () => Buffer.concat([header(), item(0, 'h/a', 'm()').subarray(0, -1), Buffer.from([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]), /beyond 2\^53/],
  ['an item that is not an array of 4', () => Buffer.concat([header(), Buffer.from([0x83, 0x00, 0x61, 0x61, 0x61, 0x62])]), /not an array of 4/],
  ['a channel that is a pattern', () => Buffer.concat([header(), item(0, 'h/*', 'm()')]), /is a pattern/],
  ['an invalid channel', () => Buffer.concat([header(), item(0, 'h//a', 'm()')]), /empty segment/],
  ['a name of 300 bytes', () => Buffer.concat([header(), item(0, 'h/'.padEnd(300, 'x'), 'm()')]), /300 bytes long/],
  ['a channel that is not UTF-8', () => Buffer.concat([header(), item(0, 'h/a', 'm()')]).fill(0xff, header().length + 3, header().length + 4), /not UTF-8/],
  ['an offset going back', () => Buffer.concat([header(), item(50, 'h/a', 'm()'), item(10, 'h/a', 'm()')]), /goes back/],
  ['bytes after the last item', () => Buffer.concat([header(), item(0, 'h/a', 'm()'), Buffer.from('junk')]), /item 2 at byte/],
];

for (const [what, make, why] of HOSTILE) {
  test(`replay refuses ${what}: EINVAL naming the file, exit 2, nothing sent`, async () => {
    const file = path.join(dir, 'hostile.qrec');
    fs.writeFileSync(file, make());
    const rx = await client();
    const got: string[] = [];
    await rx.listen('h/*', (m) => got.push(m.message)).ready;
    const r = await run(replay, [file, '--speed', 'max']);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /^EINVAL: .*hostile\.qrec is not a qcop recording: /);
    assert.match(r.stderr, why);
    assert.is(r.stderr.split('\n').length, 2, 'one line');
    // In order behind anything the replay could have sent: the marker comes alone.
    rx.send('h/a', 'marker()');
    await waitFor(() => got.length > 0, 5000, 'the marker');
    assert.equal(got, ['marker()']);
    await rx.close();
  });
}

test('replay: data that are not CBOR are EINVAL at that item (exit 2); a missing file is ENOENT (exit 1)', async () => {
  const file = path.join(dir, 'baddata.qrec');
  fs.writeFileSync(file, Buffer.concat([header(), item(0, 'bd/a', 'ok()', Buffer.from([0x05])), item(1, 'bd/a', 'bad()', Buffer.from([0xff]))]));
  const r = await run(replay, [file]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /^EINVAL: .*baddata\.qrec is not a qcop recording: item 2 at byte \d+: its data are not one CBOR item/);
  const missing = await run(replay, [path.join(dir, 'nothing.qrec')]);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /^ENOENT: cannot read .*nothing\.qrec/);
  const usage = await run(record, ['x/*']);
  assert.is(usage.code, 2);
  assert.match(usage.stderr, /^EINVAL: --out FILE is needed/);
});

test('replay: data in another encoder\'s form (5 in two bytes) go out as the same value in the library\'s bytes, and are counted', async () => {
  const file = path.join(dir, 'foreign.qrec');
  fs.writeFileSync(file, Buffer.concat([header(), item(0, 'enc/a', 'm()', Buffer.from([0x18, 0x05])), item(1, 'enc/a', 'm()', Buffer.from([0x05]))]));
  const rx = await client();
  const got: string[] = [];
  await rx.listen('enc/*', (m) => got.push(m.bytes.toString('hex'))).ready;
  const r = await run(replay, [file, '--speed', 'max']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /^qcop replay: the data of 1 message\(s\) were not in the CBOR form the library writes .*\nreplayed 2 messages in [\d.]+ s\n$/);
  await waitFor(() => got.length === 2, 5000, 'both messages');
  assert.equal(got, ['05', '05']);
});

test('--duration ends the recording: exit 0, the messages of that time, a whole file', async () => {
  const tx = await client();
  const file = path.join(dir, 'dur.qrec');
  const ready = registered(tx, 'dur/*');
  const recording = run(record, ['dur/*', '--out', file, '--duration', '0.5']);
  await ready;
  for (let i = 0; i < 3; i++) tx.send('dur/x', 'm(int)', i);
  await tx.flush();
  const r = await recording;
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /recorded 3 messages \(\d+ bytes\) in [\d.]+ s\n/);
  const { items: got } = items(file);
  assert.equal(got.map((it) => [it.channel, it.message]), [['dur/x', 'm(int)'], ['dur/x', 'm(int)'], ['dur/x', 'm(int)']]);
});

test('SIGTERM ends a recording in another process cleanly: exit 0, every message (4 MiB through shared memory) in the file', async () => {
  const tx = await client();
  const file = path.join(dir, 'signal.qrec');
  const ready = registered(tx, 'sig/*');
  const p = new Proc(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fixtures/record-cli.ts'), 'record', 'sig/*', '--out', file, '--socket', socket]);
  await Promise.race([ready, p.exited.then(() => Promise.reject(new Error(`recorder exited: ${p.stderr}`)))]);
  const big = randomBytes(4 * MiB);
  for (const data of [1, 'two', big, { four: 4 }, undefined]) await send(tx, 'sig/x', 'm()', data);
  await tx.flush();
  // Each item reaches the file on the recorder's next turn: wait for the fifth.
  await waitFor(() => {
    try {
      return items(file).items.length === 5;
    } catch {
      return false;
    }
  }, 10000, 'five items in the file');
  p.kill('SIGTERM');
  const { code } = await p.exited;
  assert.is(code, 0, p.stderr);
  const summary = /recorded 5 messages \((\d+) bytes\) in [\d.]+ s\n$/.exec(p.stderr);
  assert.ok(summary, p.stderr);
  assert.is(Number(summary![1]), fs.statSync(file).size);
  const r = RecordReader.open(file);
  try {
    const lengths: number[] = [];
    for (let it; (it = r.next(true)); ) {
      lengths.push(it.dataLength);
      if (it.dataLength > MiB) assert.is(sha1(it.data!), sha1(Buffer.concat([Buffer.from([0x5a, 0, 0x40, 0, 0]), big])));
    }
    assert.equal(lengths, [1, 'two', big, { four: 4 }, undefined].map((v) => encodeData(v).length));
  } finally {
    r.close();
  }
});

test.run();
