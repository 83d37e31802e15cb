// The Node flags qcopd runs with, wherever it is started as a daemon: the systemd unit of a board bundle
// (targets/templates/qcopd.service), bin/qcopd.js's first line, `npm start`, the bench and the reliability harness.
// test/unit/daemon-flags.test.ts fails when one of them differs. Why: docs/DECISIONS.md, "The broker's young generation".

/** A young generation of at most 3 × 4 MiB: a burst no longer leaves V8 holding up to 48 MiB the broker does not need. */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4'];
