// Owns: the BeagleBone check under QEMU armhf: two emulated brokers from the beaglebone-armhf folder joined by the serial carrier over a socat pty pair (serialport's ARMv7 binary, the lazily loaded carrier chunk).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, start, until, waitForSocket } from './harness.mjs';

const T = Number(process.env.QCOP_QEMU_TIMEOUT_MS || 90000);

/** ctx: { node, folder (copied beaglebone-armhf), lib, tmp, tally, socat }. */
export async function runSerialScenario({ node, folder, lib, tmp, tally, socat }) {
  await tally.check('armhf beaglebone-armhf: two brokers linked by the serial carrier over a pty pair', async () => {
    expect(socat, 'socat is missing (apt-get install socat)');
    const a = join(tmp, 'ttyA'), b = join(tmp, 'ttyB');
    const pty = start('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { timeoutMs: 10 * 60000 });
    await until(() => (existsSync(a) && existsSync(b)) || pty.done, 10000, 'the socat pty pair');
    const brokers = [];
    const clients = [];
    try {
      for (const [side, device, link] of [['A', a, { export: ['bb/*'] }], ['B', b, { import: ['bb/*'] }]]) {
        const sock = join(tmp, `${side}.sock`);
        const config = join(tmp, `${side}.json`);
        writeFileSync(config, JSON.stringify({ socket: sock, serial: [{ device, baud: 115200, ...link }] }));
        const broker = start(node[0], [...node.slice(1), join(folder, 'qcopd.js'), '--config', config], { timeoutMs: 10 * 60000 });
        brokers.push(broker);
        await waitForSocket(sock, T, () => !broker.done);
        clients.push(await lib.connect({ socket: sock, name: `serial-${side}` }));
      }
      const [ca, cb] = clients;
      const got = new Promise((resolve) => { cb.listen('bb/*', (m) => resolve({ channel: m.channel, message: m.message, data: m.data })); });
      // The link greets its peer first (SERIAL 3.3): send until one message crosses.
      let received;
      got.then((v) => { received = v; });
      const end = Date.now() + T;
      while (!received && Date.now() < end) {
        ca.send('bb/temp', 'reading(int)', 21);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(received, `nothing crossed the serial link; A stderr: ${brokers[0].stderr.slice(-300)} B stderr: ${brokers[1].stderr.slice(-300)}`);
      expect(received.channel === 'bb/temp' && received.message === 'reading(int)' && received.data === 21, `got ${JSON.stringify(received)}`);
      const stats = await ca.stats();
      const link = stats.carriers?.serial?.links?.[0];
      expect(link?.state === 'open', `link stats ${JSON.stringify(link)}`);
      return `link open, sent ${link.sent}`;
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
      for (const br of brokers) br.kill('SIGTERM');
      await Promise.all(brokers.map((br) => Promise.race([br.exited, new Promise((r) => setTimeout(r, 5000))])));
      pty.kill('SIGTERM');
    }
  });
}
