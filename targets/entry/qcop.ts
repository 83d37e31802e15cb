// Owns: the `qcop` command of a target bundle (qcop.js): runtime check, then the CLI command table.
import { start, TargetInfo } from './prologue';

declare var __QCOP_TARGET__: TargetInfo;

start('qcop', __QCOP_TARGET__, process.argv.slice(2));
