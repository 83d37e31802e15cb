#!/usr/bin/env node
// The `qcop` command: runs the compiled CLI.
// cbor-x's optional native part gave no gain for small messages (docs/PLATFORM-NOTES.md §2): keep it unloaded.
process.env.CBOR_NATIVE_ACCELERATION_DISABLED ??= 'true';
const { main } = await import('../dist/runtime/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
