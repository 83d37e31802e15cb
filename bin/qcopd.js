#!/usr/bin/env node
// The `qcopd` daemon: `qcop broker` under its own name, loading the broker command only (not the whole CLI).
// cbor-x's optional native part gives nothing for the broker's few control payloads: keep it unloaded.
process.env.CBOR_NATIVE_ACCELERATION_DISABLED ??= 'true';
const { runCommand } = await import('../dist/runtime/cli/run.js');
const { broker } = await import('../dist/runtime/cli/broker-command.js');

process.exitCode = await runCommand(broker, process.argv.slice(2));
