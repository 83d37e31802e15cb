// The S6 chart, written by hand: one-way p50 latency against size, log–log, one line per system.
import { LARGE } from './plan.mjs';
import { fmtSize } from './stats.mjs';
import { SYSTEMS } from './systems.mjs';

const COLORS = { qcop: '#d62728', 'qcop-shm': '#9467bd', 'qcop-loan': '#ff7f0e', 'raw-broker': '#1f77b4', 'raw-p2p': '#2ca02c' };
/** Legend names, short enough for the legend column; other systems use their label. */
const LEGEND = { qcop: 'qcop (sockets)', 'qcop-shm': 'qcop shm, send(Buffer, transfer)', 'qcop-loan': 'qcop shm, loan()' };
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function renderSweepSvg(s6, meta) {
  const W = 860, H = 460, L = 70, R = 270, T = 40, B = 60;
  const sizes = (meta.plan?.s6?.sizes ?? []).length ? meta.plan.s6.sizes : [];
  const series = [];
  for (const sys of Object.keys(COLORS)) {
    const pts = sizes.map((size) => [size, s6.summary[sys]?.[`p50@${size}`]?.median]).filter(([, y]) => Number.isFinite(y));
    series.push({ sys, pts });
  }
  const ys = series.flatMap((s) => s.pts.map((p) => p[1]));
  const yMin = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...ys, 10))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys, 100)));
  const xMin = Math.log2(sizes[0] ?? 64), xMax = Math.log2(sizes.at(-1) ?? 1 << 24);
  const X = (size) => L + ((Math.log2(size) - xMin) / (xMax - xMin || 1)) * (W - L - R);
  const Y = (us) => T + (1 - (Math.log10(us) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (H - T - B);
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(`<text x="${L}" y="22" font-size="14" font-weight="bold">S6: one-way latency p50 vs message size (1 → 1), log–log</text>`);
  for (let d = yMin; d <= yMax; d *= 10) {
    o.push(`<line x1="${L}" x2="${W - R}" y1="${Y(d).toFixed(1)}" y2="${Y(d).toFixed(1)}" stroke="#ddd"/>`);
    o.push(`<text x="${L - 6}" y="${(Y(d) + 4).toFixed(1)}" text-anchor="end">${d >= 1000 ? `${d / 1000} ms` : `${d} µs`}</text>`);
  }
  for (const size of sizes) {
    o.push(`<line x1="${X(size).toFixed(1)}" x2="${X(size).toFixed(1)}" y1="${T}" y2="${H - B}" stroke="#eee"/>`);
    o.push(`<text x="${X(size).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${esc(size === LARGE ? '1 MiB*' : fmtSize(size))}</text>`);
  }
  const mark = (size, text) => {
    o.push(`<line x1="${X(size).toFixed(1)}" x2="${X(size).toFixed(1)}" y1="${T}" y2="${H - B}" stroke="#999" stroke-dasharray="4 3"/>`);
    o.push(`<text x="${(X(size) + 3).toFixed(1)}" y="${T + 12}" fill="#666">${esc(text)}</text>`);
  };
  mark(65536, 'shm threshold');
  mark(LARGE, 'frame limit');
  o.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`);
  o.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">data size (1 MiB* = 1 MiB − 64 B, the largest data one 1 MiB frame holds)</text>`);
  let ly = T + 10;
  for (const { sys, pts } of series) {
    const c = COLORS[sys];
    if (pts.length) {
      o.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
      for (const [x, y] of pts) o.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${c}"/>`);
    }
    // No points: not available here, or (an older saved run, failed runs) not measured.
    const label = (LEGEND[sys] ?? SYSTEMS[sys].label) + (pts.length ? '' : SYSTEMS[sys].available() ? ' (not measured)' : ' (not available yet)');
    o.push(`<line x1="${W - R + 12}" x2="${W - R + 32}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"${pts.length ? '' : ' stroke-dasharray="2 3"'}/>`);
    o.push(`<text x="${W - R + 36}" y="${ly + 4}">${esc(label)}</text>`);
    ly += 18;
  }
  o.push(`<text x="${W - R + 12}" y="${ly + 10}" fill="#666" font-size="11">${esc(meta.machine.node)}, ${esc(meta.mode)} run</text>`);
  o.push(`<text x="${W - R + 12}" y="${ly + 24}" fill="#666" font-size="11">${esc(meta.date.slice(0, 16).replace('T', ' '))} UTC</text>`);
  o.push('</svg>');
  return o.join('\n') + '\n';
}
