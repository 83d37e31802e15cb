// TLS without client authentication (SPEC §8): a listener with neither token nor client
// certificates refuses to start; with a token, a client that has neither is refused before routing.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { TOKEN, freePort, makeCerts } from '../conformance/net.js';
import { assertHealthy, scene } from './harness.js';

const certs = makeCerts();
test.after(() => cleanup()); // once: the certificates live in a temporary folder

const nothingListens = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.createConnection(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });

test('a TLS listener with neither token nor client certificates refuses to start, naming the options', async () => {
  const dir = tempDir();
  const port = await freePort();
  const config = path.join(dir, 'tls.json');
  fs.writeFileSync(config, JSON.stringify({ tcp: `127.0.0.1:${port}`, tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca } }));
  const tls = ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey];
  for (const args of [[...tls], [...tls, '--tls-ca', certs.ca], ['--config', config]]) {
    const r = await runCli(['broker', '--socket', `${dir}/qcop.sock`, '--tcp', `127.0.0.1:${port}`, ...args], { QCOP_TCP_TOKEN: '' });
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /^EINVAL: a TLS listener needs client authentication: option tcpToken \(--tcp-token or \$QCOP_TCP_TOKEN\), or tls\.requireClientCert with tls\.ca/);
    assert.ok(await nothingListens(port), 'nothing listens on the port');
    assert.not.ok(fs.existsSync(`${dir}/qcop.sock`), 'no Unix socket either');
  }
});

test('TLS with a token: a client with neither token nor certificate is refused, counted, and routes nothing', async () => {
  const s = await scene(['--tcp', '127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tcp-token', TOKEN]);
  await waitFor(() => /listening on tls:\/\//.test(s.broker.stderr), 10000, 'the TLS listener');
  const url = /listening on (tls:\/\/\S+)/.exec(s.broker.stderr)![1]!;
  const env = { QCOP_TLS_CA: certs.ca, QCOP_TCP_TOKEN: '' };
  const hostile = await runCli(['send', 'bystander/feed', 'n(int)', '[999999, 0]', '--url', url], env);
  assert.is(hostile.code, 1, hostile.stdout);
  assert.match(hostile.stderr, /^EACCES: .*a token is required/);
  const ok = await runCli(['send', 'tls/x', 'm()', '--url', url], { ...env, QCOP_TCP_TOKEN: TOKEN });
  assert.is(ok.code, 0, ok.stderr);
  const stats = JSON.parse((await runCli(['stats', '--socket', s.broker.socket])).stdout);
  assert.equal(stats.carriers.tcp.listener.refused, { token: 1, tls: 0, protocol: 0 });
  await assertHealthy(s);
});

test.run();
