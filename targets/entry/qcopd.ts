// Owns: the `qcopd` command of a target bundle (qcopd.js): runtime check, then `qcop broker` in the foreground.
import { start, type TargetInfo } from './prologue.js';

declare var __QCOP_TARGET__: TargetInfo;

start('qcopd', __QCOP_TARGET__, process.argv.slice(2), 'daemon.mjs');
