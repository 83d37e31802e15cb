// A broker without carriers never loads channels/ code, serialport or a D-Bus library (channels/README.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../runtime/index.js';
import { Proc, QCOPD, ROOT, cleanup, socketAnswers, tempDir, waitFor } from '../helpers/procs.js';

const TRACE = path.join(ROOT, 'test/channels/fixtures/trace-loads.mjs');
const FORBIDDEN = /\/channels\/|serialport|@serialport|dbus-next|dbus|node_modules\/mqtt\//;

/** Runs qcopd with the module tracer, lets one client do a little, stops it; returns what it loaded. */
async function traced(args: string[]): Promise<{ loads: string[]; stats: Record<string, unknown> }> {
  const dir = tempDir();
  const trace = path.join(dir, 'loads.txt');
  const socket = path.join(dir, 'q.sock');
  const p = new Proc(process.execPath, ['--import', TRACE, QCOPD, '--socket', socket, ...args], { QCOP_TRACE_LOADS: trace });
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`broker exited: ${p.stderr}`);
    return socketAnswers(socket);
  }, 10000, 'the broker');
  await waitFor(() => /listening on/.test(p.stderr) && (!args.includes('--tcp') || /tcp:\/\//.test(p.stderr)), 5000, 'start-up');
  const c = await connect({ socket });
  await c.listen('a/*', () => {}).ready;
  await c.deliver('a/b', 'm()', { x: 1 });
  await c.call('a/b', 'ping()', undefined, { timeoutMs: 200 }).catch(() => {});
  const stats = await c.stats();
  await c.close();
  p.kill('SIGTERM');
  const { code } = await p.exited;
  assert.is(code, 0, p.stderr);
  return { loads: fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean), stats };
}

test('a broker started without any carrier loads no channels/ code, no serialport, no D-Bus library, not even cbor-x', async () => {
  const { loads, stats } = await traced([]);
  assert.ok(loads.some((l) => l.includes('/runtime/broker/broker.js')), 'the tracer sees the broker itself');
  assert.equal(loads.filter((l) => FORBIDDEN.test(l) || l.includes('cbor-x')), [], 'control payloads use the broker\'s own codec');
  assert.is(stats.carriers, undefined);
});

test('control: with --tcp the TCP carrier is loaded, and still neither serialport nor D-Bus', async () => {
  const { loads, stats } = await traced(['--tcp', '127.0.0.1:0', '--tcp-insecure-loopback']);
  assert.ok(loads.some((l) => l.includes('/channels/tcp/index.js')), 'the TCP carrier is loaded');
  assert.ok(loads.some((l) => l.includes('cbor-x')), 'the tracer sees dependencies (the carrier\'s client encodes data)');
  assert.equal(loads.filter((l) => /serialport|dbus/.test(l)), []);
  assert.ok((stats.carriers as Record<string, unknown>).tcp);
});

test('control: with --mqtt the MQTT carrier and MQTT.js are loaded, and only then (SPEC §11)', async () => {
  // Nothing answers on port 9 (discard): the bridge is loaded and keeps retrying; the broker stops cleanly.
  const { loads, stats } = await traced(['--mqtt', 'mqtt://127.0.0.1:9', '--mqtt-export', 'a/*']);
  assert.ok(loads.some((l) => l.includes('/channels/mqtt/index.js')), 'the MQTT carrier is loaded');
  assert.ok(loads.some((l) => l.includes('node_modules/mqtt/')), 'MQTT.js is loaded');
  assert.equal(loads.filter((l) => /serialport|dbus|\/channels\/tcp\//.test(l)), []);
  assert.is(((stats.carriers as Record<string, any>).mqtt).state === 'up', false);
});

test.after(() => cleanup());
test.run();
