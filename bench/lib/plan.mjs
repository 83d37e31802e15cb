// How much each mode measures: repetitions per scenario and message counts (full < 10 min, quick < 2 min on 2 cores).

/** Largest data that fits one qcop frame (1 MiB limit, header and names included): S3's "1 MiB" message. */
export const LARGE = (1 << 20) - 64;

const SWEEP = [64, 256, 1024, 4096, 16384, 65536, 262144, LARGE, 4 << 20, 16 << 20];

export const PLANS = {
  full: {
    reps: { S1: 5, S2: 5, S3: 3, S4: 8, S5: 3, S6: 3, S7: 3, S8: 3 },
    s1: { warmup: 2000, count: 20000 },
    s2: { warmup: 20000, count: 1500000 },
    s3: { latency: 40, burst: 64 },
    s4: { settleMs: 1000 },
    s5: { warmup: 20000, count: 1500000, queueBytes: 4 << 20, stallMs: 1000 },
    s6: { sizes: SWEEP, count: (size) => (size <= 65536 ? 200 : size <= LARGE ? 50 : size <= 4 << 20 ? 20 : 10) },
    s7: { warmup: 1000, count: 10000, names: 1000, fillers: 4 },
    s8: { sync: 5000, batch: 50000, warmup: 2000, count: 20000, rate: 1000 },
    idleMs: 500,
    runTimeoutMs: 120000,
  },
  quick: {
    reps: { S1: 3, S2: 3, S3: 2, S4: 4, S5: 2, S6: 2, S7: 2, S8: 2 },
    s1: { warmup: 300, count: 2000 },
    s2: { warmup: 4000, count: 300000 },
    s3: { latency: 6, burst: 10 },
    s4: { settleMs: 300 },
    s5: { warmup: 4000, count: 300000, queueBytes: 1 << 20, stallMs: 1000 },
    s6: { sizes: SWEEP, count: (size) => (size <= 65536 ? 30 : size <= LARGE ? 8 : 3) },
    s7: { warmup: 200, count: 1500, names: 1000, fillers: 4 },
    s8: { sync: 2000, batch: 20000, warmup: 300, count: 3000, rate: 1000 },
    idleMs: 300,
    runTimeoutMs: 60000,
  },
  smoke: {
    reps: { S1: 1, S2: 1, S3: 1, S4: 1, S5: 1, S6: 1, S7: 1, S8: 1 },
    s1: { warmup: 5, count: 50 },
    s2: { warmup: 50, count: 200 },
    s3: { latency: 2, burst: 2 },
    s4: { settleMs: 20 },
    s5: { warmup: 50, count: 200, queueBytes: 64 << 10, stallMs: 1000 },
    s6: { sizes: [64, 65536, LARGE, 4 << 20], count: () => 2 },
    s7: { warmup: 5, count: 50, names: 40, fillers: 2 },
    s8: { sync: 50, batch: 200, warmup: 5, count: 50, rate: 200 },
    idleMs: 100,
    runTimeoutMs: 30000,
  },
};
