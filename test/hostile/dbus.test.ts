// D-Bus `Send` from any bus peer (SPEC §8): only into the channels the bridge's `send` list allows
// (none by default); a refused Send answers org.qcop.Error.EACCES, is counted, and routes nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Proc, QCOP, cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { PrivateBus, dbusSend } from '../conformance/dbus.js';
import { assertHealthy, scene, type Scene } from './harness.js';

let bus: PrivateBus;
test.after.each(async () => {
  cleanup();
  await bus?.stop();
});

async function bridged(dbus: Record<string, unknown>): Promise<Scene> {
  bus = await new PrivateBus().start();
  const config = path.join(tempDir(), 'dbus.json');
  fs.writeFileSync(config, JSON.stringify({ dbus: { bus: bus.address, ...dbus } }));
  const s = await scene(['--config', config]);
  await waitFor(async () => (await bridge(s)).state === 'up', 10000, 'the bridge on the bus');
  return s;
}

const bridge = async (s: Scene) => JSON.parse((await runCli(['stats', '--socket', s.broker.socket])).stdout).carriers.dbus;

/** Calls Send as any program on the bus would; returns the D-Bus error name, or '' on success. */
function send(channel: string, bytes = '0x01'): string {
  try {
    dbusSend(bus, ['--print-reply', '--dest=org.qcop.Bridge', '/org/qcop', 'org.qcop.Channel1.Send', `string:${channel}`, 'string:n(int)', `array:byte:${bytes}`]);
    return '';
  } catch (e) {
    return /org\.qcop\.Error\.[A-Z]+/.exec(String((e as { stderr?: string }).stderr))?.[0] ?? String(e);
  }
}

test('a bus peer calls Send into a channel outside dbus.send: EACCES, counted, the bystander gets nothing; an allowed one works', async () => {
  // Nothing exported under ui/: `registered ui/button` must mean the listener, not the bridge's export.
  const s = await bridged({ export: ['status/*'], send: ['ui/*'] });
  assert.is(send('bystander/feed'), 'org.qcop.Error.EACCES');
  assert.is(send('QPE/System'), 'org.qcop.Error.EACCES');
  const listener = new Proc(process.execPath, [QCOP, 'listen', 'ui/button', '--count', '1', '--timeout', '10', '--socket', s.broker.socket]);
  await waitFor(async () => (await runCli(['registered', 'ui/button', '--socket', s.broker.socket])).code === 0, 10000, 'the listener');
  assert.is(send('ui/button', '0x18,0x2a'), '');
  assert.is((await listener.exited).code, 0, listener.stderr);
  assert.equal(listener.json()[0], { channel: 'ui/button', message: 'n(int)', data: 42 });
  const b = await bridge(s);
  assert.is(b.sendsRefused, 2);
  assert.is(b.sendsIn, 1);
  assert.equal(b.send, ['ui/*']);
  await assertHealthy(s);
});

test('without a send list the bridge takes no Send at all', async () => {
  const s = await bridged({ export: ['ui/*'] });
  assert.is(send('bystander/feed'), 'org.qcop.Error.EACCES');
  assert.is(send('ui/button'), 'org.qcop.Error.EACCES');
  assert.is((await bridge(s)).sendsRefused, 2);
  await assertHealthy(s);
});

test.run();
