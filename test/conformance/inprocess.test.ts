// The conformance suite over the in-process broker (no socket at all).
import { connect, startBroker, type Broker } from '../../runtime/index.js';
import { conformance } from './suite.js';

conformance('in-process broker', async () => {
  let broker: Broker = await startBroker({ noSocket: true, logLevel: 'error' });
  return {
    // A function, so a reconnecting client finds the restarted broker.
    connect: (options) => connect({ broker: () => broker, ...options }),
    restartBroker: async () => {
      await broker.close();
      broker = await startBroker({ noSocket: true, logLevel: 'error' });
    },
    cleanup: () => broker.close(),
  };
});
