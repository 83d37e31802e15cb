// The MQTT bridge when the server goes away: QoS 1 across a mosquitto restart, the bounded offline buffer, and TLS with a generated CA.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Client } from '../../runtime/index.js';
import { Mosquitto, freePort, mosquittoSub } from '../helpers/mosquitto.js';
import { cleanup, spawnBroker, tempDir, waitFor } from '../helpers/procs.js';

const clients: Client[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mqttStats = async (c: Client) => ((await c.stats()) as any).carriers.mqtt;

async function client(socket: string): Promise<Client> {
  const c = await connect({ socket });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

test.after.each(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});

test('QoS 1: mosquitto restarted mid-stream, nothing is lost (a persistent QoS 1 subscriber, as a back end runs one)', async () => {
  const mq = await Mosquitto.start({ persistence: true });
  // The back end: a persistent session (-c, fixed id) at QoS 1, so the server keeps its messages across the restart.
  const sub = mosquittoSub(mq.port, ['-c', '-i', 'backend-1', '-q', '1', '-t', 'fleet/r/seq/#', '-F', '%p']);
  const b = await spawnBroker(['--mqtt', mq.url, '--mqtt-prefix', 'fleet/r/', '--mqtt-export', 'seq/*', '--mqtt-qos', '1', '--mqtt-client-id', 'qcop-restart']);
  const c = await client(b.socket);
  await waitFor(async () => (await mqttStats(c)).state === 'up', 15000, 'the bridge up');
  await sleep(500); // the subscriber's session exists before the stream starts
  const N = 600;
  for (let i = 0; i < N; i++) {
    c.send('seq/n', 'n(int)', i);
    if (i === 200) void mq.restart(300); // SIGTERM (mosquitto saves its sessions), 300 ms away, started again
    await sleep(5);
  }
  await waitFor(() => new Set(sub.lines).size >= N, 60000, `all ${N} messages at the subscriber (has ${new Set(sub.lines).size})`);
  const got = new Set(sub.lines.map(Number));
  for (let i = 0; i < N; i++) assert.ok(got.has(i), `message ${i} arrived`);
  const s = await mqttStats(c);
  assert.is(s.dropped, 0);
  assert.ok(s.disconnects >= 1, 'the bridge saw the server go');
  assert.ok(s.connects >= 2, 'and come back');
  sub.kill();
  await mq.stop();
});

test('offline: what waits while the server is away is bounded; drops are counted in stats; the rest arrives once it is back', async () => {
  const mq = await Mosquitto.start({ persistence: true });
  const sub = mosquittoSub(mq.port, ['-c', '-i', 'backend-2', '-q', '1', '-t', 'fleet/o/#', '-F', '%t %p']);
  const b = await spawnBroker(['--mqtt', mq.url, '--mqtt-prefix', 'fleet/o/', '--mqtt-export', 'v/*', '--mqtt-qos', '1', '--mqtt-max-buffered-bytes', '4000']);
  const c = await client(b.socket);
  await waitFor(async () => (await mqttStats(c)).state === 'up', 15000, 'the bridge up');
  await sleep(300);
  await mq.stop();
  await waitFor(async () => (await mqttStats(c)).state === 'down', 15000, 'the bridge to see the server gone');
  for (let i = 0; i < 100; i++) c.send('v/x', 'n(int)', i); // ~90 bytes each: about 40 fit
  await c.flush();
  const away = await mqttStats(c);
  assert.ok(away.buffered > 10 && away.buffered < 100, `buffered ${away.buffered}`);
  assert.is(away.buffered + away.dropped, 100);
  assert.ok(away.bufferedBytes <= 4000, `bufferedBytes ${away.bufferedBytes}`);
  await mq.restart();
  await waitFor(() => sub.lines.filter((l) => l.startsWith('fleet/o/v/x ')).length >= away.buffered, 30000, 'the buffered messages');
  const values = sub.lines.filter((l) => l.startsWith('fleet/o/v/x ')).map((l) => Number(l.split(' ')[1]));
  assert.equal(values, [...Array(away.buffered).keys()], 'the oldest ones were kept, in order');
  const after = await mqttStats(c);
  assert.is(after.dropped, away.dropped);
  assert.is(after.buffered, 0);
  sub.kill();
  await mq.stop();
});

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

test('TLS: mqtts:// with a generated CA, the server certificate checked and a client certificate required', async () => {
  const dir = tempDir();
  const p = (f: string) => path.join(dir, f);
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=qcop test CA', '-keyout', 'ca.key', '-out', 'ca.pem']);
  for (const [name, cn, ext] of [['server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1'], ['board', 'board-1', 'extendedKeyUsage=clientAuth']] as const) {
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
    fs.writeFileSync(p(`${name}.ext`), ext + '\n');
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
  }
  const mq = await Mosquitto.start({ listener: [`cafile ${p('ca.pem')}`, `certfile ${p('server.pem')}`, `keyfile ${p('server.key')}`, 'require_certificate true'] });
  const tls = ['--cafile', p('ca.pem'), '--cert', p('board.pem'), '--key', p('board.key')];
  const sub = mosquittoSub(mq.port, [...tls, '-t', 'fleet/tls/#', '-v']);
  const b = await spawnBroker(['--mqtt', `mqtts://127.0.0.1:${mq.port}`, '--mqtt-prefix', 'fleet/tls/', '--mqtt-export', 's/*', '--mqtt-ca', p('ca.pem'), '--mqtt-cert', p('board.pem'), '--mqtt-key', p('board.key')]);
  const c = await client(b.socket);
  await waitFor(async () => (await mqttStats(c)).state === 'up', 15000, `the bridge up over TLS (${b.stderr})`);
  await waitFor(() => {
    c.send('s/t', 'temp(double)', 21.5);
    return sub.lines.includes('fleet/tls/s/t 21.5');
  }, 15000, 'the message over TLS');
  // Without the client certificate the server refuses the bridge; it says why and keeps retrying.
  const refused = await spawnBroker(['--mqtt', `mqtts://127.0.0.1:${mq.port}`, '--mqtt-prefix', 'fleet/no/', '--mqtt-export', 's/*', '--mqtt-ca', p('ca.pem')]);
  const rc = await client(refused.socket);
  await waitFor(async () => typeof (await mqttStats(rc)).lastError === 'string', 15000, 'the refusal reported');
  assert.is.not((await mqttStats(rc)).state, 'up');
  sub.kill();
  await mq.stop();
});

test('user name and password ($QCOP_MQTT_PASSWORD), over WebSockets (ws://); a wrong password is reported and retried, not fatal', async () => {
  const dir = tempDir();
  const pw = path.join(dir, 'passwd');
  execFileSync('mosquitto_passwd', ['-b', '-c', pw, 'board1', 's3cret-pw'], { stdio: 'ignore' });
  const wsPort = await freePort();
  const mq = await Mosquitto.start({ noAnonymous: true, listener: [`password_file ${pw}`, `listener ${wsPort} 127.0.0.1`, 'protocol websockets'] });
  const sub = mosquittoSub(mq.port, ['-u', 'board1', '-P', 's3cret-pw', '-t', 'fleet/pw/#', '-v']);
  process.env.QCOP_MQTT_PASSWORD = 's3cret-pw';
  const b = await spawnBroker(['--mqtt', `ws://127.0.0.1:${wsPort}`, '--mqtt-prefix', 'fleet/pw/', '--mqtt-export', 's/*', '--mqtt-username', 'board1']);
  process.env.QCOP_MQTT_PASSWORD = 'wrong';
  const bad = await spawnBroker(['--mqtt', mq.url, '--mqtt-prefix', 'fleet/bad/', '--mqtt-export', 's/*', '--mqtt-username', 'board1']);
  delete process.env.QCOP_MQTT_PASSWORD;
  const c = await client(b.socket);
  await waitFor(async () => (await mqttStats(c)).state === 'up', 15000, `the bridge up over ws:// (${b.stderr})`);
  await waitFor(() => {
    c.send('s/t', 'temp(double)', 21.5);
    return sub.lines.includes('fleet/pw/s/t 21.5');
  }, 15000, 'the message');
  const bc = await client(bad.socket);
  await waitFor(async () => /Not authorized|Bad username or password/i.test((await mqttStats(bc)).lastError ?? ''), 15000, 'the refusal reported');
  assert.is.not((await mqttStats(bc)).state, 'up');
  sub.kill();
  await mq.stop();
});

test.after(async () => {
  await cleanup();
});
test.run();
