// docs/RELIABILITY.md: the header of a run, one table row per scenario, and what the rows check.
import type { Row } from './row.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderTable(meta: Record<string, string>, rows: Row[]): string {
  const lines = [
    '# Reliability',
    '',
    'Written by `reliability/run.ts`; do not edit by hand. Each row is one scenario (`reliability/scenarios/`): what it did, what it',
    'measured, and whether every check held. A failed row says why; a failing check is never weakened to make a row pass.',
    '',
    '| | |',
    '|---|---|',
    ...Object.entries(meta).map(([k, v]) => `| ${k} | ${cell(v)} |`),
    '',
    '| scenario | what was done | figures | result | why (when failed) |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.scenario} (${r.seconds} s) | ${cell(r.did)} | ${cell(r.figures.join('; '))} | ${r.failed.length ? '**FAIL**' : 'pass'} | ${cell(r.failed.join('; '))} |`),
    '',
  ];
  return lines.join('\n');
}

export function describeRows(): string {
  return `
## How to run

- Long form (1,000 kills, 20 restarts, 1,000,000 fuzz frames, a 30-minute soak):
  \`npm run reliability\` (\`node --import tsx reliability/run.ts\`). It writes this file (\`--out FILE\` elsewhere).
  \`--soak-minutes N\` shortens the soak; \`--seed N\` repeats a run's choices and fuzz inputs;
  \`--only storm,restart,fuzz,soak,exhaust\` runs some rows.
- Short form (a few minutes: 60 kills in 3 rounds, 3 restarts, 50,000 fuzz frames, a 10 s soak, the exhaustion rows):
  \`node --import tsx reliability/run.ts --short [--out FILE]\`; \`test/reliability/short.test.ts\` runs it inside \`npm test\`.
  A 10-minute soak would belong in the short form, but a short form that must fit \`npm test\` on a loaded 2-core
  machine cannot hold one, so its soak is seconds long and the long form carries the long soak (docs/DECISIONS.md).
- The exhaustion rows need root (\`unshare -m\` and \`mount -t tmpfs\` for a private /dev/shm and a tiny socket folder);
  run as another user they fail and say so. Every process, socket, temporary folder, mount and shm object is removed
  at the end, also on failure or Ctrl-C.

## What the rows check

- **storm**: client processes (reliability/lib/storm-client.mjs) listening, watching, sending small and 200 KiB messages,
  calling (one call never answered), holding a pool loan, the segment lock of a shared segment, a semaphore unit, and
  (one in four) a segment, its lock and a semaphore of their own, SIGKILLed mid-traffic in rounds of 20; after each
  round no shm object of a dead client may remain 500 ms later while the broker runs; at the end clients, channels,
  watches, calls pending, pool segments, slots and descriptors are back to the figures after the warm-up, broker RSS
  within 10 % of them, the lock is recovered, every semaphore unit back, the bystander received everything in order,
  \`qcop stats\` shows only the observer and \`qcop shm ls\` lists nothing of the storm.
- **restart**: 50 client processes (reliability/lib/restart-client.mjs), each listening on its own channel and sending a
  numbered message every 20 ms to the next one; the broker SIGKILLed and restarted at once on the same socket, as a
  supervisor would; the time from the restart until every listener is registered again (goal: p99 under 1 s) and a
  probe reaches each; every message accepted by send() is received, or counted to its sender (unrouted in a flush,
  unconfirmed in the 'disconnected' event), or refused with a code: never silently lost, never duplicated.
- **fuzz**: random and mutated frames (test/fuzz/gen.ts: patterns, names, descriptors, control payloads, bad hellos,
  broken framing, garbage), played by test/fuzz/play.ts against one live qcopd process over many raw connections;
  0 crashes (the broker never exits), 0 hangs (a request that must be answered is answered within 3 s, a broken
  stream is closed after an error frame), the bystander lost nothing; the seed is printed; an input that crashes or
  hangs the broker is saved under test/fuzz/crashes, which test/fuzz/replay.test.ts replays in every \`npm test\`.
- **soak**: a mixed workload for the given minutes: S1 round trips, S2 fan-out 1 → 4, 200 KiB messages through the
  pool, calls, registration and watch churn, short-lived processes SIGKILLed or exiting; broker RSS sampled (each
  minute in the long form) and its slope after the warm-up (the first third) reported, growth after the warm-up
  within 10 % (the short form reports the slope without judging it: its seconds are inside V8's heap warm-up); descriptors flat; no shm object of a dead process at any sample; nothing lost.
- **exhaust-fds**: the broker under \`ulimit -n 64\` gets 150 connections at once: each is served or refused with a code,
  counted, the bystander keeps getting everything, new clients are served once they close.
- **exhaust-shm**: /dev/shm a nearly full 16 MiB tmpfs (private mount namespace): large messages are received inline or
  refused with ENOSPC, counted by the sender, nothing lost silently; once space returns they go through the pool.
- **exhaust-disk**: the socket folder on a full 64 KiB tmpfs: the broker says ENOSPC naming the socket and exits;
  space back, it starts and serves.

Only the restart row has a time goal (every listener back in under 1 s, p99 over the restarts);
every other time is a figure. Broker RSS and descriptors are read from \`/proc/<pid>\` of the broker process.
`;
}
