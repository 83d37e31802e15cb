// Serial links over socat pty pairs: broker to broker, broker to a "microcontroller", garbage, unplug/replug, limits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SerialPort } from 'serialport';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Client } from '../../runtime/index.js';
import { encodeHello, encodeMsg, FrameReader, HELLO_ANSWER, Type, type Record_ } from '../../channels/serial/frame.js';
import { Proc, QCOP, cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { spawnQcopd, stop, type TcpBroker } from '../conformance/net.js';
import { PtyPair } from '../conformance/pty.js';

const brokers: TcpBroker[] = [];
const clients: Client[] = [];
const pairs: PtyPair[] = [];
const ports: SerialPort[] = [];

async function pty(): Promise<PtyPair> {
  const p = await new PtyPair().start();
  pairs.push(p);
  return p;
}

async function broker(serial: Array<Record<string, unknown>>, name: string): Promise<TcpBroker> {
  const config = path.join(tempDir(), `${name}.json`);
  fs.writeFileSync(config, JSON.stringify({ name, serial }));
  const b = await spawnQcopd(['--config', config]);
  brokers.push(b);
  return b;
}

async function client(b: TcpBroker): Promise<Client> {
  const c = await connect({ socket: b.socket });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

const link = async (c: Client) => ((await c.stats()) as any).carriers?.serial.links[0] ?? {};

/** A microcontroller stand-in on one end of the pair, speaking docs/SERIAL.md. */
async function mcu(device: string): Promise<{ port: SerialPort; records: Record_[]; reader: FrameReader }> {
  const port = new SerialPort({ path: device, baudRate: 115200, lock: false, autoOpen: false });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  ports.push(port);
  const reader = new FrameReader();
  const records: Record_[] = [];
  port.on('data', (d: Buffer) =>
    reader.push(d, (r) => {
      records.push(r);
      // SERIAL 3.3: a greeting that asks for an answer gets one.
      if (r.type === Type.Hello && r.flags & HELLO_ANSWER) port.write(encodeHello(0, 4096, 'mcu-1'));
    }),
  );
  return { port, records, reader };
}

const cbor = (hex: string) => Buffer.from(hex.replace(/\s/g, ''), 'hex');

test.after.each(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(brokers.splice(0).map((b) => stop(b)));
  await Promise.all(ports.splice(0).map((p) => new Promise((r) => (p.isOpen ? p.close(r) : r(null)))));
  await Promise.all(pairs.splice(0).map((p) => p.stop()));
});
test.after(() => cleanup());

test('two brokers over a pty pair: qcop listen on one sees qcop send on the other; no loop, no duplicate', async () => {
  const line = await pty();
  const both = { export: ['x/*'], import: ['x/*'] };
  const a = await broker([{ device: line.a, ...both }], 'a');
  const b = await broker([{ device: line.b, ...both }], 'b');
  const [ca, cb] = [await client(a), await client(b)];
  await waitFor(async () => (await link(ca)).peer === 'b' && (await link(cb)).peer === 'a', 5000, 'both ends to greet');

  const listener = new Proc(process.execPath, [QCOP, 'listen', 'x/*', '--count', '1', '--timeout', '5', '--socket', b.socket]);
  await waitFor(async () => ((await cb.stats()) as any).queues.connections.some((c: any) => c.name === 'qcop-cli' && c.listeners > 0), 5000, 'qcop listen');
  const sent = await runCli(['send', 'x/hello', 'greet(QString)', '"over the wire"', '--socket', a.socket]);
  assert.is(sent.code, 0, sent.stderr);
  assert.is((await listener.exited).code, 0, listener.stderr);
  assert.equal(listener.json(), [{ channel: 'x/hello', message: 'greet(QString)', data: 'over the wire' }]);

  const seenA: string[] = [];
  const seenB: string[] = [];
  await ca.listen('x/*', (m) => seenA.push(`${m.channel}:${m.data}`)).ready;
  await cb.listen('x/*', (m) => seenB.push(`${m.channel}:${m.data}`)).ready;
  const N = 40;
  for (let i = 0; i < N; i++) {
    ca.send('x/a', 'm()', i);
    cb.send('x/b', 'm()', i);
  }
  await waitFor(() => seenA.length >= 2 * N && seenB.length >= 2 * N, 5000, 'all messages on both sides');
  await new Promise((r) => setTimeout(r, 400));
  for (const seen of [seenA, seenB]) {
    for (const ch of ['x/a', 'x/b']) {
      assert.equal(seen.filter((s) => s.startsWith(ch + ':')).map((s) => Number(s.split(':')[1])), [...Array(N).keys()], `${ch} once each, in order`);
    }
  }
  assert.is(((await ca.stats()) as any).routed, 2 * N + 1);
});

test('a microcontroller on the line: records in and out; garbage dropped by CRC, counted; the line resynchronises', async () => {
  const line = await pty();
  const b = await broker([{ device: line.b, export: ['cmd/*'], import: ['mcu/*'] }], 'b');
  const cb = await client(b);
  await waitFor(async () => (await link(cb)).state === 'open', 5000, 'the broker to open its end');
  const m = await mcu(line.a);
  // The broker may have greeted before this end was open; asking for an answer is what SERIAL 3.3 is for.
  m.port.write(encodeHello(HELLO_ANSWER, 4096, 'mcu-1'));
  await waitFor(() => m.records.some((r) => r.type === Type.Hello), 5000, 'the broker HELLO');
  await waitFor(async () => (await link(cb)).peer === 'mcu-1', 2000, 'the broker to know its peer');
  const got: unknown[] = [];
  await cb.listen('mcu/*', (msg) => got.push([msg.channel, msg.message, msg.data])).ready;

  m.port.write(encodeMsg('mcu/temp', 'reading(int)', cbor('18 2a'))); // 42
  m.port.write(Buffer.from([0x13, 0x37, 0xff, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00])); // line noise
  const corrupt = encodeMsg('mcu/temp', 'reading(int)', cbor('18 2b'));
  corrupt[6] ^= 0x04;
  m.port.write(corrupt);
  m.port.write(encodeMsg('other/x', 'm()', Buffer.alloc(0))); // not imported
  m.port.write(encodeMsg('mcu/temp', 'reading(int)', cbor('18 2c'))); // 44
  await waitFor(() => got.length >= 2, 5000, 'the two good readings');
  await waitFor(async () => (await link(cb)).notImported === 1, 2000, 'the record not imported');
  const s = await link(cb);
  assert.equal(got, [['mcu/temp', 'reading(int)', 42], ['mcu/temp', 'reading(int)', 44]]);
  assert.ok(s.crcErrors + s.malformed >= 3, `garbage counted: ${JSON.stringify(s)}`);
  assert.ok(s.crcErrors >= 1, 'the corrupted record fails its CRC');
  const st = (await cb.stats()) as any;
  assert.is(st.carriers.serial.links[0].received, 2);

  // And out: a message on an exported channel becomes one MSG record.
  await cb.deliver('cmd/led', 'set(bool)', true);
  await waitFor(() => m.records.some((r) => r.type === Type.Msg), 5000, 'a MSG record at the microcontroller');
  const rec = m.records.find((r) => r.type === Type.Msg) as Extract<Record_, { type: Type.Msg }>;
  assert.equal([rec.channel, rec.message, rec.data], ['cmd/led', 'set(bool)', cbor('f5')]);
});

test('a record imported and exported on the same pattern is not sent back, even in non-canonical CBOR', async () => {
  const line = await pty();
  const b = await broker([{ device: line.b, export: ['both/*'], import: ['both/*'] }], 'b');
  const cb = await client(b);
  await waitFor(async () => (await link(cb)).state === 'open', 5000, 'the broker to open its end');
  const m = await mcu(line.a);
  const got: unknown[] = [];
  await cb.listen('both/*', (msg) => got.push(msg.data)).ready;
  m.port.write(encodeMsg('both/x', 'v(int)', cbor('19 00 2a'))); // 42 in three bytes; the client re-encodes it in two
  await waitFor(() => got.length === 1, 5000, 'the record');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(got, [42]);
  assert.equal(m.records.filter((r) => r.type === Type.Msg), [], 'nothing echoed to the line');
  assert.is((await link(cb)).echoesSuppressed, 1);
});

test('the device disappears and comes back: both ends reopen and traffic resumes', async () => {
  const line = await pty();
  const both = { export: ['x/*'], import: ['x/*'], retryMs: 100 };
  const a = await broker([{ device: line.a, ...both }], 'a');
  const b = await broker([{ device: line.b, ...both }], 'b');
  const [ca, cb] = [await client(a), await client(b)];
  await waitFor(async () => (await link(ca)).peer === 'b' && (await link(cb)).peer === 'a', 5000, 'both ends to greet');
  await line.stop();
  await waitFor(async () => (await link(ca)).state !== 'open' && (await link(cb)).state !== 'open', 5000, 'both ends to notice');
  assert.match(a.stderr, /serial .*gone/);
  await line.start();
  await waitFor(async () => (await link(ca)).state === 'open' && (await link(cb)).state === 'open', 5000, 'both ends to reopen');
  const got: unknown[] = [];
  await cb.listen('x/*', (m) => got.push(m.data)).ready;
  await waitFor(async () => {
    ca.send('x/ping', 'm()', 'again');
    await ca.flush();
    await new Promise((r) => setTimeout(r, 100));
    return got.length > 0;
  }, 5000, 'traffic after the device came back');
  assert.ok((await link(ca)).reopens >= 1);
});

test('a missing device or a busy one gives a clear error; the broker keeps retrying', async () => {
  const dir = tempDir();
  const missing = path.join(dir, 'ttyUSB9');
  const b1 = await broker([{ device: missing, export: ['x/*'], retryMs: 100 }], 'm');
  const c1 = await client(b1);
  await waitFor(() => /ENOENT serial device .*ttyUSB9 does not exist/.test(b1.stderr), 3000, 'the missing-device error');
  assert.is((await link(c1)).state, 'missing');

  const line = await pty();
  const holder = new SerialPort({ path: line.a, baudRate: 115200, lock: true, autoOpen: false });
  await new Promise<void>((res, rej) => holder.open((e) => (e ? rej(e) : res())));
  ports.push(holder);
  const b2 = await broker([{ device: line.a, export: ['x/*'], retryMs: 100 }], 'busy');
  const c2 = await client(b2);
  await waitFor(() => /EBUSY serial device .* is in use by another process/.test(b2.stderr), 3000, 'the busy-device error');
  assert.is((await link(c2)).state, 'busy');
  await new Promise((r) => holder.close(r));
  await waitFor(async () => (await link(c2)).state === 'open', 3000, 'the device once released');

  const bad = await runCli(['broker', '--socket', path.join(dir, 's'), '--config', writeConfig(dir, { serial: [{ device: missing }] })]);
  assert.is(bad.code, 2, 'a link that carries nothing is a usage error');
  assert.match(bad.stderr, /exports and imports nothing/);
});

function writeConfig(dir: string, o: unknown): string {
  const f = path.join(dir, 'bad.json');
  fs.writeFileSync(f, JSON.stringify(o));
  return f;
}

test('at 115200 baud a burst is paced and bounded: the excess is dropped and counted, the rest arrives', async () => {
  const line = await pty();
  const a = await broker([{ device: line.a, export: ['x/*'], maxBufferedBytes: 8192 }], 'a');
  const b = await broker([{ device: line.b, import: ['x/*'] }], 'b');
  const [ca, cb] = [await client(a), await client(b)];
  await waitFor(async () => (await link(ca)).peer === 'b', 5000, 'greeting');
  let got = 0;
  await cb.listen('x/*', () => got++).ready;
  const payload = Buffer.alloc(200, 0x55);
  const t0 = Date.now();
  for (let i = 0; i < 300; i++) ca.send('x/burst', 'blob()', payload);
  await ca.flush();
  const during = await link(ca);
  assert.ok(during.queuedBytes <= 8192, `bounded: ${during.queuedBytes}`);
  assert.ok(during.lost > 0, 'the excess is counted');
  await waitFor(async () => (await link(ca)).queuedBytes === 0, 10000, 'the line to drain');
  await waitFor(() => got === during.sent, 5000, `${during.sent} messages at the other end`);
  const s = await link(ca);
  assert.is(s.sent + s.lost, 300);
  const seconds = (Date.now() - t0) / 1000;
  const bytes = s.sent * 230;
  assert.ok(seconds >= (0.6 * bytes) / 11520, `paced near 11.5 kB/s: ${bytes} bytes in ${seconds.toFixed(2)} s`);
});

test.run();
