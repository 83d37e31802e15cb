#!/usr/bin/env node
// The `qcop` command: runs the compiled CLI.
import { main } from '../dist/runtime/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
