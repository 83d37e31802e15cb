// Table cells shared by the scenarios: "median (min–max)", ratios, target verdicts.
import { fmt, ratio } from './stats.mjs';

/** "median (min–max)" of one metric summary. */
export function cell(s, unit) {
  if (!s || !s.n) return '–';
  if (s.n === 1 || s.min === s.max) return fmt(s.median, unit);
  return `${fmt(s.median, unit)} (${fmt(s.min, unit)}–${fmt(s.max, unit)})`;
}

export function times(x) {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : '–';
}

/** Ratio of two summaries' medians, as "1.23×". */
export function ratioCell(a, b) {
  return times(ratio(a?.median, b?.median));
}

export function verdict(met) {
  return met === true ? 'met' : met === false ? '**missed**' : 'n/a';
}

/**
 * A target line for the summary table; `met` is null when it cannot be judged in this run.
 * `limit` says what is known to limit the figure; the report prints it when the target is missed.
 */
export function target(scenario, text, measured, met, limit = '') {
  return { scenario, target: text, measured, met: typeof met === 'boolean' ? met : null, limit };
}

/** Median of one variant's metric, or NaN. */
export const med = (summary, variant, key) => summary[variant]?.[key]?.median ?? NaN;

/** What a table or target says for an available system without figures: a saved run from before it existed (--rerender), or every run failed. */
export const NOT_MEASURED = 'not measured';
