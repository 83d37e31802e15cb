// The MQTT bridge against a scripted server: the fall back to 3.1.1 (docs/MQTT.md "Connection"), and a QoS 1 publish resent after a drop.
import * as net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../runtime/index.js';
import { cleanup, spawnBroker, waitFor } from '../helpers/procs.js';

/** The protocol level byte of an MQTT CONNECT packet (5 for MQTT 5, 4 for 3.1.1), or null while incomplete. */
function connectLevel(b: Buffer): number | null {
  if (b.length < 2 || b[0] !== 0x10) return null;
  let i = 1;
  while (i < b.length && b[i]! & 0x80) i++;
  const at = i + 1 + 2 + 4; // after the remaining length, the name's length and "MQTT"
  return b.length > at ? b[at]! : null;
}

test("a 3.1.1-only server refuses MQTT 5 (CONNACK 'unacceptable protocol version'): the bridge connects again with 3.1.1", async () => {
  const levels: number[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    let buf = Buffer.alloc(0);
    let answered = false;
    s.on('error', () => {});
    s.on('data', (d) => {
      if (answered) return; // packets after CONNECT: not read
      buf = Buffer.concat([buf, d]);
      const level = connectLevel(buf);
      if (level === null) return;
      levels.push(level);
      answered = true;
      if (level === 4) s.write(Buffer.from([0x20, 0x02, 0x00, 0x00])); // accepted
      else s.end(Buffer.from([0x20, 0x02, 0x00, 0x01])); // 3.1.1 CONNACK: unacceptable protocol version
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const b = await spawnBroker(['--mqtt', `mqtt://127.0.0.1:${port}`, '--mqtt-export', 'a/*']);
  const c = await connect({ socket: b.socket });
  try {
    await waitFor(async () => ((await c.stats()) as any).carriers.mqtt.state === 'up', 15000, `the bridge up with 3.1.1 (levels ${levels}; ${b.stderr})`);
    assert.equal(levels.slice(0, 2), [5, 4]);
    assert.is(((await c.stats()) as any).carriers.mqtt.protocol, '3.1.1');
    assert.match(b.stderr, /refused MQTT 5; using MQTT 3\.1\.1/);
  } finally {
    await c.close();
    for (const s of sockets) s.destroy();
    server.close();
  }
});

/** Whole MQTT packets from a byte stream: [first byte, body], the rest kept for the next read. */
function packets(buf: Buffer): { list: Array<[number, Buffer]>; rest: Buffer } {
  const list: Array<[number, Buffer]> = [];
  for (;;) {
    let len = 0;
    let mult = 1;
    let i = 1;
    for (; i < buf.length && i < 5; i++) {
      len += (buf[i]! & 0x7f) * mult;
      mult *= 128;
      if (!(buf[i]! & 0x80)) break;
    }
    if (i >= buf.length || buf.length < i + 1 + len) return { list, rest: buf };
    list.push([buf[0]!, buf.subarray(i + 1, i + 1 + len)]);
    buf = buf.subarray(i + 1 + len);
  }
}

test('a QoS 1 publish the server never acknowledged is sent again after the reconnection, not forgotten', async () => {
  // Connection 1 takes the PUBLISH on a/x, sends no PUBACK and drops; connection 2 must get it again.
  // (Presence publishes on online are acknowledged and left out.)
  const seen: Array<{ conn: number; id: number; payload: string }> = [];
  const sockets: net.Socket[] = [];
  let conns = 0;
  const server = net.createServer((s) => {
    const conn = ++conns;
    sockets.push(s);
    let buf: Buffer = Buffer.alloc(0);
    s.on('error', () => {});
    s.on('data', (d) => {
      const { list, rest } = packets(Buffer.concat([buf, d]));
      buf = rest;
      for (const [first, body] of list) {
        if (first >> 4 === 1) s.write(Buffer.from([0x20, 0x02, 0x00, 0x00])); // CONNECT: accepted
        if (first >> 4 !== 3) continue; // not a PUBLISH
        const topicLen = body.readUInt16BE(0);
        const id = body.readUInt16BE(2 + topicLen);
        const puback = Buffer.from([0x40, 0x02, id >> 8, id & 0xff]);
        if (body.subarray(2, 2 + topicLen).toString() !== 'a/x') {
          s.write(puback);
          continue;
        }
        seen.push({ conn, id, payload: body.subarray(4 + topicLen).toString() });
        if (conn === 1) s.destroy(); // gone before the PUBACK
        else s.write(puback);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const b = await spawnBroker(['--mqtt', `mqtt://127.0.0.1:${port}`, '--mqtt-protocol', '4', '--mqtt-export', 'a/*', '--mqtt-qos', '1', '--mqtt-format', 'json']);
  const c = await connect({ socket: b.socket });
  const mqtt = async () => ((await c.stats()) as any).carriers.mqtt;
  try {
    await waitFor(async () => (await mqtt()).state === 'up', 15000, `the bridge up (${b.stderr})`);
    const before = (await mqtt()).published;
    c.send('a/x', 'n(int)', 7);
    await waitFor(async () => (await mqtt()).published === before + 1, 15000, "the publish acknowledged on a later connection");
    assert.equal(seen.map((x) => x.conn), [1, 2], JSON.stringify(seen));
    assert.is(seen[1]!.id, seen[0]!.id, 'the same packet id');
    assert.equal(seen.map((x) => x.payload), ['7', '7']);
    const s = await mqtt();
    assert.is(s.dropped, 0);
    assert.is(s.bufferedBytes, 0, 'nothing left waiting for an acknowledgement');
  } finally {
    await c.close();
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test.after(async () => {
  await cleanup();
});
test.run();
