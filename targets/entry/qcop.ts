// Owns: the `qcop` command of a target bundle (qcop.js): runtime check, then the CLI command table.
import { start, type TargetInfo } from './prologue.js';

declare var __QCOP_TARGET__: TargetInfo;

start('qcop', __QCOP_TARGET__, process.argv.slice(2), 'main.mjs');
