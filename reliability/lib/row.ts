// One row of docs/RELIABILITY.md: a scenario, what it did, its figures, and every check that failed.
export interface Row {
  scenario: string;
  seconds: number;
  did: string;
  figures: string[];
  /** Failed checks, each saying why; empty when the row passes. */
  failed: string[];
}

/** What every scenario gets from reliability/run.ts. */
export interface RunContext {
  short: boolean;
  seed: number;
  soakMinutes: number;
  log(text: string): void;
}

/** Adds a failure to `row` unless `ok`. */
export function check(row: Row, ok: boolean, why: string): void {
  if (!ok) row.failed.push(why);
}

export function newRow(scenario: string, did = ''): Row {
  return { scenario, seconds: 0, did, figures: [], failed: [] };
}
