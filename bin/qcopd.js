#!/usr/bin/env node
// The `qcopd` daemon: `qcop broker` under its own name.
import { main } from '../dist/runtime/cli/main.js';

process.exitCode = await main(['broker', ...process.argv.slice(2)]);
