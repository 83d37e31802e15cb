// Owns: the ESM entry of a target bundle (lib/main.mjs): the qcop command table, loaded by qcop.js/qcopd.js after their runtime check.
export { main } from '../../runtime/cli/main.js';
