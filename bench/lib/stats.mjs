// Medians, ranges and the ratios the report prints; a summary is { median, min, max, n } per metric.

export function median(xs) {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function summarize(values) {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** Per variant, per metric: the summary over every successful run of that variant. */
export function summarizeRuns(runs) {
  const by = {};
  for (const r of runs) {
    if (!r.metrics) continue;
    const m = (by[r.variant] ??= {});
    for (const [k, v] of Object.entries(r.metrics)) if (typeof v === 'number') (m[k] ??= []).push(v);
  }
  const out = {};
  for (const [variant, metrics] of Object.entries(by)) {
    out[variant] = {};
    for (const [k, vs] of Object.entries(metrics)) out[variant][k] = summarize(vs);
  }
  return out;
}

/** Rotates `list` by `n`: repetition n starts with a different system. */
export function rotate(list, n) {
  const k = n % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

const MiB = 1024 * 1024;

/** Formats a number in its unit for the tables. */
export function fmt(x, unit) {
  if (!Number.isFinite(x)) return '–';
  switch (unit) {
    case 'µs':
      return x >= 10000 ? `${(x / 1000).toFixed(1)} ms` : x >= 100 ? `${x.toFixed(0)} µs` : `${x.toFixed(1)} µs`;
    case 'ms':
      return `${x.toFixed(1)} ms`;
    case 'msg/s':
      return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M/s` : `${(x / 1e3).toFixed(1)} k/s`;
    case 'MiB/s':
      return `${x.toFixed(0)} MiB/s`;
    case 'bytes':
      return `${(x / MiB).toFixed(1)} MiB`;
    case 'count':
      return String(Math.round(x));
    case 's':
      return `${x.toFixed(1)} s`;
    default:
      return x.toPrecision(3);
  }
}

export function fmtSize(bytes) {
  // S3's "1 MiB" (one frame's worth of data) reads as what it is: 1 MiB − 64 B.
  if (bytes > 1024 && bytes % 1024 !== 0) return `${fmtSize(Math.ceil(bytes / 1024) * 1024)} − ${Math.ceil(bytes / 1024) * 1024 - bytes} B`;
  if (bytes >= MiB) return Number.isInteger(bytes / MiB) ? `${bytes / MiB} MiB` : `${(bytes / MiB).toFixed(2)} MiB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${bytes} B`;
}

export const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN);
