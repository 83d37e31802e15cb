// The MQTT bridge against a real mosquitto, checked with mosquitto_sub and mosquitto_pub as a back-end developer would (docs/MQTT.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Client, type ReceivedMessage } from '../../runtime/index.js';
import { encodeData } from '../../runtime/protocol/data.js';
import { Mosquitto, mosquittoPub, mosquittoSub } from '../helpers/mosquitto.js';
import { Proc, cleanup, runCli, spawnBroker, tempDir, waitFor } from '../helpers/procs.js';

let mq: Mosquitto;
const clients: Client[] = [];
let n = 0;

/** A qcop broker bridged to the test's mosquitto under a prefix of its own; waits until its presence is true. */
async function bridged(flags: string[], prefix = `fleet/t${++n}/`): Promise<{ b: Proc & { socket: string }; c: Client; prefix: string }> {
  const online = mosquittoSub(mq.port, ['-t', `${prefix}$online`, '-v']);
  const b = await spawnBroker(['--mqtt', mq.url, '--mqtt-prefix', prefix, '--mqtt-client-id', `qcop-test-${n}`, ...flags]);
  await waitFor(() => online.lines.includes(`${prefix}$online true`), 15000, `${prefix}$online true (broker: ${b.stderr})`);
  online.kill();
  const c = await connect({ socket: b.socket });
  c.on('error', () => {});
  clients.push(c);
  return { b, c, prefix };
}

const mqttStats = async (c: Client) => ((await c.stats()) as any).carriers.mqtt;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A subscriber that is surely subscribed: it has seen a probe message published after it started. */
async function subscriber(args: string[], probeTopic: string): Promise<Proc> {
  const s = mosquittoSub(mq.port, args);
  await waitFor(() => {
    mosquittoPub(mq.port, ['-t', probeTopic, '-m', 'probe']);
    return s.lines.some((l) => l.includes('probe'));
  }, 15000, 'mosquitto_sub to subscribe');
  return s;
}

test.before(async () => {
  mq = await Mosquitto.start();
});

test.after.each(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});

test('qcop → MQTT, json: `qcop send sensors/t temp(double) 21.5` is 21.5 on fleet/…/sensors/t, its message name a v5 user property', async () => {
  const { b, prefix } = await bridged(['--mqtt-export', 'sensors/*']);
  const sub = await subscriber(['-t', `${prefix}#`, '-v'], `${prefix}probe`);
  const v5 = await subscriber(['-V', 'mqttv5', '-t', `${prefix}#`, '-F', '%t|%p|%P'], `${prefix}probe`);
  const r = await runCli(['send', 'sensors/t', 'temp(double)', '21.5', '--socket', b.socket]);
  assert.is(r.code, 0, r.stderr);
  await runCli(['send', 'other/x', 'm()', '1', '--socket', b.socket]); // not exported
  await runCli(['send', 'sensors/obj', 'reading()', '{"v":[1,2],"ok":true,"s":"x"}', '--socket', b.socket]);
  await waitFor(() => sub.lines.some((l) => l.startsWith(`${prefix}sensors/obj `)), 10000, 'the messages on MQTT');
  assert.ok(sub.lines.includes(`${prefix}sensors/t 21.5`), sub.lines.join('\n'));
  assert.ok(sub.lines.includes(`${prefix}sensors/obj {"v":[1,2],"ok":true,"s":"x"}`), sub.lines.join('\n'));
  assert.not.ok(sub.lines.some((l) => l.includes('other/x')), 'a channel not exported stays on the board');
  await waitFor(() => v5.lines.some((l) => l.startsWith(`${prefix}sensors/t|`)), 10000, 'the v5 subscriber');
  assert.ok(v5.lines.includes(`${prefix}sensors/t|21.5|qcop-message:temp(double)`), v5.lines.join('\n'));
});

test('qcop → MQTT, cbor: the payload is the CBOR array [message, data], the sender\'s data bytes unchanged', async () => {
  const { c, prefix } = await bridged(['--mqtt-export', 'sensors/*', '--mqtt-format', 'cbor']);
  const sub = await subscriber(['-t', `${prefix}sensors/#`, '-F', '%t %x'], `${prefix}sensors/probe`);
  const data = { t: 21.5, raw: Buffer.from([0, 1, 2]), n: 12345678901234567890n };
  c.send('sensors/t', 'temp(map)', data);
  const expected = Buffer.concat([Buffer.from([0x82]), encodeData('temp(map)'), encodeData(data)]).toString('hex');
  await waitFor(() => sub.lines.some((l) => l.startsWith(`${prefix}sensors/t `)), 10000, 'the cbor message');
  assert.ok(sub.lines.includes(`${prefix}sensors/t ${expected}`), `${sub.lines.join('\n')}\nexpected ${expected}`);
});

test('MQTT → qcop: mosquitto_pub on fleet/…/cmd/led reaches `qcop listen cmd/*`; JSON, text, the v5 message name; other topics stay out', async () => {
  const { b, c, prefix } = await bridged(['--mqtt-import', 'cmd/*']);
  const listen = new Proc(process.execPath, ['bin/qcop.js', 'listen', 'cmd/*', '--socket', b.socket]);
  await waitFor(async () => ((await c.stats()) as any).channels >= 1, 10000, 'qcop listen');
  const got: ReceivedMessage[] = [];
  await c.listen('*', (m) => got.push(m)).ready;
  mosquittoPub(mq.port, ['-t', `${prefix}cmd/led`, '-m', '{"on":true}']);
  await waitFor(() => listen.lines.length > 0, 10000, 'qcop listen to print the command');
  assert.match(listen.lines[0]!, /cmd\/led/);
  assert.match(listen.lines[0]!, /"on":\s*true/);
  mosquittoPub(mq.port, ['-t', `${prefix}cmd/text`, '-m', 'hello']);
  mosquittoPub(mq.port, ['-V', 'mqttv5', '-t', `${prefix}cmd/vol`, '-m', '7', '-D', 'publish', 'user-property', 'qcop-message', 'setVolume(int)']);
  mosquittoPub(mq.port, ['-t', `${prefix}other/x`, '-m', '1']);
  mosquittoPub(mq.port, ['-t', `${prefix}cmd`, '-m', '1']); // MQTT's cmd/# matches cmd; qcop's cmd/* does not
  mosquittoPub(mq.port, ['-t', `${prefix}cmd/last`, '-m', '0']);
  await waitFor(() => got.some((m) => m.channel === 'cmd/last'), 10000, 'the commands');
  const seen = got.map((m) => [m.channel, m.message, m.data]);
  assert.equal(seen, [['cmd/led', 'mqtt', { on: true }], ['cmd/text', 'mqtt', 'hello'], ['cmd/vol', 'setVolume(int)', 7], ['cmd/last', 'mqtt', 0]]);
  const s = await mqttStats(c);
  assert.is(s.imported, 4);
  assert.is(s.state, 'up');
  assert.is(s.protocol, '5');
});

for (const protocol of ['5', '4']) {
  test(`no loops (MQTT ${protocol === '5' ? '5, no-local' : '3.1.1, own publishes recognised'}): a channel both exported and imported crosses once each way`, async () => {
    const { c, prefix } = await bridged(['--mqtt-export', 'x/*', '--mqtt-import', 'x/*', '--mqtt-protocol', protocol]);
    const sub = await subscriber(['-t', `${prefix}x/#`, '-v'], `${prefix}x/probe`);
    const got: string[] = [];
    await c.listen('x/*', (m) => m.channel !== 'x/probe' && got.push(`${m.channel} ${JSON.stringify(m.data)}`)).ready;
    c.send('x/a', 'm()', 1); // qcop → MQTT, and not back
    await c.flush();
    mosquittoPub(mq.port, ['-t', `${prefix}x/b`, '-m', '2']); // MQTT → qcop, and not back
    await sleep(1500);
    c.send('x/end', 'm()', 3);
    await waitFor(() => sub.lines.includes(`${prefix}x/end 3`), 10000, 'the last message on MQTT');
    await sleep(300);
    // Two publishers (the bridge, mosquitto_pub): each message once, in either order.
    assert.equal(sub.lines.filter((l) => !l.includes('probe')).sort(), [`${prefix}x/a 1`, `${prefix}x/b 2`, `${prefix}x/end 3`]);
    assert.equal(got.sort(), ['x/a 1', 'x/b 2', 'x/end 3']);
    assert.is((await mqttStats(c)).protocol, protocol === '5' ? '5' : '3.1.1');
  });
}

test('retained: a channel in --mqtt-retain keeps its last value on the server for a subscriber that comes later', async () => {
  const { c, prefix } = await bridged(['--mqtt-export', 'state/*', '--mqtt-retain', 'state/*']);
  c.send('state/mode', 'mode(QString)', 'eco');
  c.send('state/mode', 'mode(QString)', 'boost');
  await c.flush();
  await waitFor(async () => (await mqttStats(c)).published >= 2, 10000, "the publishes acknowledged");
  const late = mosquittoSub(mq.port, ['-t', `${prefix}state/mode`, '-F', '%r %t %p', '-C', '1']);
  await late.exited;
  assert.equal(late.lines, [`1 ${prefix}state/mode "boost"`]);
});

test('presence: $online is true while connected, false after kill -9 of the qcop broker (the Last Will) and after a clean stop', async () => {
  const { b, prefix } = await bridged(['--mqtt-export', 'a/*']);
  const now = () => {
    const s = mosquittoSub(mq.port, ['-t', `${prefix}$online`, '-C', '1']);
    return s.exited.then(() => s.lines[0]);
  };
  assert.is(await now(), 'true');
  b.kill('SIGKILL');
  await b.exited;
  await waitFor(async () => (await now()) === 'false', 15000, 'the Will: $online false');
  const again = await bridged(['--mqtt-export', 'a/*'], prefix);
  assert.is(await now(), 'true');
  again.b.kill('SIGTERM');
  assert.is((await again.b.exited).code, 0, again.b.stderr);
  assert.is(await now(), 'false');
});

test('group prefix: one mosquitto_pub on fleet/all/cmd reaches the cmd listener of every board that has --mqtt-group fleet/all/', async () => {
  const group = `fleet/all${n}/`;
  const boards = [await bridged(['--mqtt-import', 'cmd', '--mqtt-group', group]), await bridged(['--mqtt-import', 'cmd', '--mqtt-group', group])];
  const got: string[][] = [[], []];
  await Promise.all(boards.map((b, i) => b.c.listen('cmd', (m) => got[i]!.push(JSON.stringify(m.data))).ready));
  await waitFor(() => {
    mosquittoPub(mq.port, ['-t', `${group}cmd`, '-m', '{"reboot":true}']);
    return got.every((g) => g.length > 0);
  }, 15000, 'the group command at both boards');
  assert.equal(got.map((g) => g[0]), ['{"reboot":true}', '{"reboot":true}']);
  mosquittoPub(mq.port, ['-t', `${boards[0]!.prefix}cmd`, '-m', '"one"']); // the board's own topic still works
  await waitFor(() => got[0]!.includes('"one"'), 10000, 'the board\'s own command');
  assert.not.ok(got[1]!.includes('"one"'));
});

test('hostile payloads are dropped and counted, never sent in; the broker keeps going', async () => {
  const { c, prefix } = await bridged(['--mqtt-import', 'in/*', '--mqtt-format', 'cbor']);
  const got: unknown[] = [];
  await c.listen('in/*', (m) => got.push([m.message, m.data])).ready;
  mosquittoPub(mq.port, ['-t', `${prefix}in/a`, '-m', 'not cbor']);
  mosquittoPub(mq.port, ['-t', `${prefix}in/b`, '-n']); // empty payload
  const ok = Buffer.concat([Buffer.from([0x82]), encodeData('m()'), encodeData(5)]);
  mosquittoPub(mq.port, ['-t', `${prefix}in/c`, '-f', writeTemp(ok)]);
  await waitFor(() => got.length > 0, 10000, 'the good message');
  assert.equal(got, [['m()', 5]]);
  const s = await mqttStats(c);
  assert.is(s.badPayload, 2);
  assert.is(s.imported, 1);
});

function writeTemp(bytes: Buffer): string {
  const f = path.join(tempDir(), 'payload.bin');
  fs.writeFileSync(f, bytes);
  return f;
}

test('bad options stop the broker at start with a reason: no URL, a wrong URL, a wrong prefix', async () => {
  const noUrl = await runCli(['broker', '--socket', '/tmp/unused-qcop-mqtt.sock', '--mqtt-prefix', 'a/']);
  assert.is(noUrl.code, 2, noUrl.stderr);
  assert.match(noUrl.stderr, /--mqtt-prefix needs --mqtt URL/);
  const wrong = await runCli(['broker', '--socket', '/tmp/unused-qcop-mqtt.sock', '--mqtt', 'ftp://x']);
  assert.is.not(wrong.code, 0);
  assert.match(wrong.stderr, /EINVAL.*mqtt: url must be/);
  const prefix = await runCli(['broker', '--socket', '/tmp/unused-qcop-mqtt.sock', '--mqtt', mq.url, '--mqtt-prefix', 'fleet/+/']);
  assert.match(prefix.stderr, /prefix 'fleet\/\+\/' must not hold/);
});

test.after(async () => {
  await cleanup();
});
test.run();
