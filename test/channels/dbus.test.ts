// The D-Bus bridge against a private dbus-daemon, checked with dbus-send and dbus-monitor as a user would.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Client } from '../../runtime/index.js';
import { channelToBusName, channelToPath, pathToChannel } from '../../channels/dbus/names.js';
import { parseRule, ruleMatches } from '../../channels/dbus/rules.js';
import { Proc, cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { spawnQcopd, stop, type TcpBroker } from '../conformance/net.js';
import { PrivateBus, dbusSend } from '../conformance/dbus.js';

const brokers: TcpBroker[] = [];
const clients: Client[] = [];
const buses: PrivateBus[] = [];
const procs: Proc[] = [];

async function setup(extra: Record<string, unknown> = {}): Promise<{ bus: PrivateBus; b: TcpBroker; c: Client }> {
  const bus = await new PrivateBus().start();
  buses.push(bus);
  const config = path.join(tempDir(), 'dbus.json');
  fs.writeFileSync(config, JSON.stringify({
    dbus: {
      bus: bus.address, export: ['x/*'], presence: ['app/*'], send: ['in/*'], retryMaxMs: 200,
      import: [{ rule: "type='signal',interface='org.example.Sensor',member='Changed'", channel: 'dbus/sensor' }],
      ...extra,
    },
  }));
  const b = await spawnQcopd(['--config', config]);
  brokers.push(b);
  const c = await connect({ socket: b.socket });
  c.on('error', () => {});
  clients.push(c);
  await waitFor(async () => ((await c.stats()) as any).carriers?.dbus.state === 'up', 5000, 'the bridge on the bus');
  return { bus, b, c };
}

const bridge = async (c: Client) => ((await c.stats()) as any).carriers.dbus;

test.after.each(async () => {
  for (const p of procs.splice(0)) p.kill('SIGTERM');
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(brokers.splice(0).map((b) => stop(b)));
  await Promise.all(buses.splice(0).map((b) => b.stop()));
});
test.after(() => cleanup());

test('names: channel names map to object paths and bus names reversibly', () => {
  const cases: Array<[string, string]> = [
    ['QPE/System', '/org/qcop/channel/QPE/System'],
    ['tst_QcopChannel::send()', '/org/qcop/channel/tst_5fQcopChannel_3a_3asend_28_29'],
    ['sensors/imu/0', '/org/qcop/channel/sensors/imu/0'],
    ['Grüße/x y', '/org/qcop/channel/Gr_c3_bc_c3_9fe/x_20y'],
  ];
  for (const [ch, p] of cases) {
    assert.is(channelToPath(ch), p);
    assert.is(pathToChannel(p), ch);
  }
  assert.is(channelToBusName('app/editor'), 'org.qcop.Channel.app.editor');
  assert.is(channelToBusName('sensors/imu/0'), 'org.qcop.Channel.sensors.imu._30');
  assert.is(channelToBusName('x/' + 'y'.repeat(300)), null);
  const r = parseRule("interface='org.example.Sensor',member='Changed'");
  assert.ok(ruleMatches(r, { interface: 'org.example.Sensor', member: 'Changed', path: '/a' }));
  assert.not.ok(ruleMatches(r, { interface: 'org.example.Sensor', member: 'Other' }));
  assert.throws(() => parseRule("arg0='x'"), /not supported/);
});

test('dbus-monitor sees a qcop message as signal org.qcop.Channel1.Message on the channel\'s path', async () => {
  const { bus, b, c } = await setup();
  const monitor = new Proc('dbus-monitor', [`--address`, bus.address, "type='signal',interface='org.qcop.Channel1'"]);
  procs.push(monitor);
  await waitFor(() => monitor.lines.length > 0, 5000, 'dbus-monitor to start');
  await new Promise((r) => setTimeout(r, 200));
  const sent = await runCli(['send', 'x/hello', 'greet(QString)', '"hi"', '--socket', b.socket]);
  assert.is(sent.code, 0, sent.stderr);
  await waitFor(() => monitor.lines.some((l) => l.includes('greet(QString)')), 5000, 'the signal in dbus-monitor');
  const text = monitor.lines.join('\n');
  assert.match(text, /signal .*path=\/org\/qcop\/channel\/x\/hello; interface=org\.qcop\.Channel1; member=Message/);
  assert.match(text, /string "greet\(QString\)"/);
  assert.match(text, /array of bytes "bhi"|array of bytes \[\s*62 68 69\s*\]/);
  assert.is((await bridge(c)).signalsOut, 1);
});

test('dbus-send into qcop: Send(s channel, s message, ay data) reaches qcop listeners', async () => {
  const { bus, c } = await setup();
  const got: unknown[] = [];
  await c.listen('in/*', (m) => got.push([m.channel, m.message, m.data])).ready;
  dbusSend(bus, ['--print-reply', '--dest=org.qcop.Bridge', '/org/qcop', 'org.qcop.Channel1.Send', 'string:in/cmd', 'string:setLevel(int)', 'array:byte:0x18,0x2a']);
  await waitFor(() => got.length === 1, 5000, 'the message');
  assert.equal(got[0], ['in/cmd', 'setLevel(int)', 42]);
  let err = '';
  try {
    dbusSend(bus, ['--print-reply', '--dest=org.qcop.Bridge', '/org/qcop', 'org.qcop.Channel1.Send', 'string:in/*', 'string:m()', 'array:byte:']);
  } catch (e) {
    err = String((e as { stderr?: string }).stderr);
  }
  assert.match(err, /org\.qcop\.Error\.EINVAL/);
});

test('imported D-Bus signals arrive on their qcop channel; presence shows as bus names', async () => {
  const { bus, c } = await setup();
  const got: unknown[] = [];
  await c.listen('dbus/sensor', (m) => got.push([m.message, m.data])).ready;
  dbusSend(bus, ['--type=signal', '/org/example/Sensor', 'org.example.Sensor.Changed', 'double:21.5', 'string:celsius']);
  dbusSend(bus, ['--type=signal', '/org/example/Sensor', 'org.example.Sensor.Ignored', 'double:1']);
  await waitFor(() => got.length === 1, 5000, 'the imported signal');
  assert.equal(got[0], ['Changed(ds)', [21.5, 'celsius']]);

  const hasOwner = () => dbusSend(bus, ['--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', 'string:org.qcop.Channel.app.editor']);
  assert.match(hasOwner(), /boolean false/);
  const other = await connect({ socket: brokers[0]!.socket });
  clients.push(other);
  const l = other.listen('app/editor', () => {});
  await l.ready;
  await waitFor(() => /boolean true/.test(hasOwner()), 5000, 'the presence name');
  l.close();
  await waitFor(() => /boolean false/.test(hasOwner()), 5000, 'the presence name to go');
});

test('the D-Bus daemon goes away: the bridge reports it, retries, and works again', async () => {
  const { bus, b, c } = await setup();
  await bus.stop();
  await waitFor(async () => (await bridge(c)).state === 'down', 5000, 'the bridge to notice');
  await waitFor(() => /dbus: lost the bus/.test(b.stderr), 2000, 'the report');
  c.send('x/while-down', 'm()');
  await c.flush();
  assert.is((await bridge(c)).lost, 1, 'a message with no bus is counted');
  await bus.start();
  await waitFor(async () => (await bridge(c)).state === 'up', 5000, 'the bridge to reconnect');
  assert.is((await bridge(c)).reconnects, 1);
  const got: unknown[] = [];
  await c.listen('in/*', (m) => got.push(m.data)).ready;
  dbusSend(bus, ['--print-reply', '--dest=org.qcop.Bridge', '/org/qcop', 'org.qcop.Channel1.Send', 'string:in/again', 'string:m()', 'array:byte:0xf5']);
  await waitFor(() => got.length === 1, 5000, 'traffic after the reconnection');
  assert.equal(got, [true]);
});

test.run();
