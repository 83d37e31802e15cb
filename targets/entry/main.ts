// Owns: the ESM entry of the qcop command in a target bundle (lib/main.mjs): the whole command table, loaded by qcop.js after its runtime check.
export { main } from '../../runtime/cli/main.js';
