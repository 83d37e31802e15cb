// The MQTT bridge against a server that speaks only MQTT 3.1.1: `protocol: 'auto'` falls back (docs/MQTT.md "Connection").
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

test.after(async () => {
  await cleanup();
});
test.run();
