// The conformance suite over TCP with a token, against a spawned qcopd restarted on the same port.
import { connect } from '../../runtime/index.js';
import { cleanup } from '../helpers/procs.js';
import { conformance } from './suite.js';
import { TOKEN, freePort, spawnQcopd, stop } from './net.js';

conformance('tcp', async () => {
  const port = await freePort();
  const args = ['--tcp', `127.0.0.1:${port}`, '--tcp-token', TOKEN];
  let broker = await spawnQcopd(args);
  const socket = broker.socket;
  return {
    connect: (options) => connect({ url: `tcp://127.0.0.1:${port}`, transport: { token: TOKEN }, ...options }),
    async restartBroker() {
      await stop(broker, 'SIGKILL');
      broker = await spawnQcopd(args, socket);
    },
    async cleanup() {
      await stop(broker);
      cleanup();
    },
  };
});
