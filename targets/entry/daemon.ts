// Owns: the ESM entry of qcopd in a target bundle (lib/daemon.mjs): the broker command alone, so the daemon loads no client command code at start.
export { daemon as main } from '../../runtime/cli/daemon.js';
