// The conformance suite over mutual TLS (client certificate required), against a spawned qcopd.
import { connect } from '../../runtime/index.js';
import { cleanup } from '../helpers/procs.js';
import { conformance } from './suite.js';
import { freePort, makeCerts, spawnQcopd, stop, type Certs } from './net.js';

let certs: Certs | undefined;

conformance('tls (mutual)', async () => {
  certs ??= makeCerts();
  const c = certs;
  const port = await freePort();
  const args = ['--tcp', `127.0.0.1:${port}`, '--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--tls-ca', c.ca, '--tls-require-client-cert'];
  let broker = await spawnQcopd(args);
  const socket = broker.socket;
  return {
    connect: (options) => connect({ url: `tls://127.0.0.1:${port}`, transport: { ca: c.ca, cert: c.clientCert, key: c.clientKey }, ...options }),
    async restartBroker() {
      await stop(broker, 'SIGKILL');
      broker = await spawnQcopd(args, socket);
    },
    async cleanup() {
      await stop(broker);
    },
  };
});
process.on('exit', cleanup);
