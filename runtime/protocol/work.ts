// The step counter of matching work (SPEC §8): cost is counted, never timed.

/**
 * Matching work done so far, in steps (one step: one pattern token compared with one character,
 * or one candidate looked at). The broker charges it to the connection whose request caused it
 * (broker/turns.ts) and the fuzz test bounds it per send: cost is counted, never timed.
 */
export const work = { steps: 0 };
