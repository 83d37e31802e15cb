#!/usr/bin/env -S node --max-semi-space-size=4
// The `qcopd` daemon: `qcop broker` under its own name, loading the broker command only (runtime/cli/daemon.ts).
// cbor-x's optional native part gives nothing for the broker's few control payloads: keep it unloaded.
process.env.CBOR_NATIVE_ACCELERATION_DISABLED ??= 'true';
const { daemon } = await import('../dist/runtime/cli/daemon.js');

process.exitCode = await daemon(process.argv.slice(2));
