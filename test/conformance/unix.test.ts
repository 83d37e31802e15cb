// The conformance suite over the Unix socket of a spawned qcopd.
import * as path from 'node:path';
import { connect } from '../../runtime/index.js';
import { cleanup, spawnBroker, tempDir } from '../helpers/procs.js';
import { conformance } from './suite.js';

conformance('unix socket', async () => {
  const socket = path.join(tempDir(), 'qcop.sock');
  let broker = await spawnBroker([], socket);
  return {
    connect: (options) => connect({ socket, ...options }),
    async restartBroker() {
      broker.kill('SIGKILL');
      await broker.exited;
      broker = await spawnBroker([], socket);
    },
    async cleanup() {
      broker.kill('SIGTERM');
      await broker.exited;
      cleanup();
    },
  };
});
