// TCP/TLS admission: wrong or missing token, rejected certificates, unsafe settings; nothing is routed.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Client } from '../../runtime/index.js';
import { cleanup, runCli, tempDir } from '../helpers/procs.js';
import { TOKEN, freePort, makeCerts, spawnQcopd, stop, type TcpBroker } from '../conformance/net.js';

const brokers: TcpBroker[] = [];
const clients: Client[] = [];
const certs = makeCerts();

async function broker(args: string[]): Promise<TcpBroker> {
  const b = await spawnQcopd(args);
  brokers.push(b);
  return b;
}

async function local(b: TcpBroker): Promise<Client> {
  const c = await connect({ socket: b.socket });
  clients.push(c);
  return c;
}

async function refused(p: Promise<unknown>, code: string, text: RegExp): Promise<void> {
  try {
    const c = await p;
    clients.push(c as Client);
  } catch (err) {
    assert.is((err as { code?: string }).code, code, (err as Error).message);
    assert.match((err as Error).message, text);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test.after.each(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(brokers.splice(0).map((b) => stop(b)));
});
test.after(() => cleanup());

test('plain TCP: a wrong or missing token is refused with a logged reason, and nothing is routed', async () => {
  const b = await broker(['--tcp', '127.0.0.1:0', '--tcp-token', TOKEN]);
  const watcher = await local(b);
  let got = 0;
  await watcher.listen('secret/*', () => got++).ready;
  await refused(connect({ url: b.url, transport: { token: 'not-the-right-token-at-all' } }), 'EACCES', /wrong token/);
  await refused(connect({ url: b.url, transport: { token: '' } }), 'EACCES', /token is required/);
  // A raw client that skips the preamble and sends a frame straight away: refused before routing.
  const raw = net.createConnection(new URL(b.url).port as unknown as number, '127.0.0.1');
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    raw.on('data', (d) => (text += d.toString('latin1')));
    raw.on('close', () => resolve(text));
    raw.on('error', () => {});
    raw.write(Buffer.from('1000000004000000', 'hex'));
  });
  assert.match(answer, /^QCOP-DENY EPROTO /);
  const stats = (await watcher.stats()) as any;
  assert.equal(stats.carriers.tcp.listener.refused, { token: 2, tls: 0, protocol: 1 });
  assert.is(stats.routed, 0);
  assert.is(got, 0);
  assert.match(b.stderr, /refused 127\.0\.0\.1:\d+: EACCES wrong token/);
  assert.match(b.stderr, /refused 127\.0\.0\.1:\d+: EACCES a token is required/);
  // The right token works, from the library and from `qcop --url` ($QCOP_TCP_TOKEN).
  const ok = await connect({ url: b.url, transport: { token: TOKEN } });
  clients.push(ok);
  assert.is(await ok.deliver('secret/x', 'm()'), 1);
  const cli = await runCli(['send', 'secret/y', 'm()', '--url', b.url], { QCOP_TCP_TOKEN: TOKEN });
  assert.is(cli.stdout, '{"receivers":1}\n', cli.stderr);
  const bad = await runCli(['send', 'secret/y', 'm()', '--url', b.url], { QCOP_TCP_TOKEN: 'x'.repeat(20) });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /^EACCES: /);
});

test('plain TCP without a token: refused at start on a non-loopback host; insecure mode only on loopback', async () => {
  const port = String(await freePort());
  const env = { QCOP_TCP_TOKEN: '' };
  for (const [args, why] of [
    [['--tcp', `0.0.0.0:${port}`], /needs a token/],
    [['--tcp', `0.0.0.0:${port}`, '--tcp-insecure-loopback'], /only allowed on a loopback host/],
    [['--tcp', `127.0.0.1:${port}`, '--tcp-token', 'short'], /16 to 256/],
  ] as Array<[string[], RegExp]>) {
    const r = await runCli(['broker', '--socket', `${certs.dir}/never.sock`, ...args], env);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, why);
  }
  const b = await broker(['--tcp', port, '--tcp-insecure-loopback']);
  assert.is(b.url, `tcp://127.0.0.1:${port}`, 'a bare port listens on loopback');
  const c = await connect({ url: b.url });
  clients.push(c);
  assert.is(await c.isRegistered('x/y'), false);
});

test('loopback without a token: one is generated into a 0600 file that same-user local clients use; others are refused', async () => {
  const runtime = tempDir();
  const env = { QCOP_TCP_TOKEN: '', XDG_RUNTIME_DIR: runtime };
  const port = await freePort();
  const b = await spawnQcopd(['--tcp', `127.0.0.1:${port}`], undefined, env);
  brokers.push(b);
  const file = `${runtime}/qcop/tcp-${port}.token`;
  assert.match(b.stderr, `token for local clients in ${file}`);
  assert.is(fs.statSync(file).mode & 0o777, 0o600);
  const ok = await runCli(['send', 'local/x', 'm()', '--url', b.url], env);
  assert.is(ok.stdout, '{"receivers":0}\n', ok.stderr);
  const elsewhere = await runCli(['send', 'local/x', 'm()', '--url', b.url], { QCOP_TCP_TOKEN: '', XDG_RUNTIME_DIR: tempDir() });
  assert.is(elsewhere.code, 1);
  assert.match(elsewhere.stderr, /^EACCES: /);
  await stop(b);
  assert.not.ok(fs.existsSync(file), 'the token file goes with the listener');
});

test('mutual TLS: the client is identified by its certificate CN in stats', async () => {
  const b = await broker(['--tcp', '127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.ca, '--tls-require-client-cert']);
  assert.match(b.url, /^tls:\/\//);
  const c = await connect({ url: b.url, name: 'board', transport: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
  clients.push(c);
  const stats = (await c.stats()) as any;
  const peer = stats.carriers.tcp.listener.peers[0];
  assert.is(peer.identity, 'CN=board-7');
  assert.is(peer.transport, 'tls');
  const conn = stats.queues.connections.find((x: any) => x.id === peer.connection);
  assert.is(conn.name, 'board');
});

test('mutual TLS: no certificate, or one from another CA, is refused with a logged reason', async () => {
  const b = await broker(['--tcp', '127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.ca, '--tls-require-client-cert']);
  const watcher = await local(b);
  let got = 0;
  await watcher.listen('*', () => got++).ready;
  await refused(connect({ url: b.url, transport: { ca: certs.ca } }), 'EACCES', /TLS/);
  await refused(connect({ url: b.url, transport: { ca: certs.ca, cert: certs.rogueCert, key: certs.rogueKey } }), 'EACCES', /TLS/);
  const stats = (await watcher.stats()) as any;
  assert.is(stats.carriers.tcp.listener.refused.tls, 2);
  assert.is(stats.carriers.tcp.listener.accepted, 0);
  assert.is(got, 0);
  assert.match(b.stderr, /refused 127\.0\.0\.1:\d+: EACCES TLS handshake failed/);
});

test('TLS: a client refuses a broker whose certificate its CA did not sign', async () => {
  const b = await broker(['--tcp', '127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tcp-token', TOKEN]);
  await refused(connect({ url: b.url, transport: { ca: certs.rogueCa, token: TOKEN } }), 'EACCES', /TLS .* failed/);
  const c = await connect({ url: b.url, transport: { ca: certs.ca, token: TOKEN } });
  clients.push(c);
  assert.is(await c.deliver('a/b', 'm()'), 0);
});

test.run();
