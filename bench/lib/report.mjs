// bench/RESULTS.md from the results object: machine, load, the targets, then one section per scenario.
import { verdict } from './cells.mjs';
import { fmt } from './stats.mjs';

function table({ caption, header, rows }) {
  const esc = (c) => String(c).replace(/\|/g, '\\|');
  const lines = [];
  if (caption) lines.push(`*${caption}*`, '');
  lines.push(`| ${header.map(esc).join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '--:')).join('|')}|`);
  for (const r of rows) lines.push(`| ${r.map(esc).join(' | ')} |`);
  return lines.join('\n');
}

export function renderMarkdown(results, { svgName, jsonName }) {
  const { meta, scenarios } = results;
  const m = meta.machine;
  const load = (l) => (l ? l.map((x) => x.toFixed(2)).join(' / ') : '–');
  const out = [];
  out.push('# qcop benchmarks', '');
  out.push(`Written by \`npm run bench${meta.mode === 'full' ? '' : ` -- --${meta.mode}`}\` (bench/run.mjs, ${meta.mode} mode) on ${meta.date}; raw figures in [${jsonName}](${jsonName}).`, '');
  out.push('Every figure is the median over repetitions (min–max in brackets); each repetition starts fresh processes, and repetitions interleave the systems in rotating order. Ratios compare medians from this same run. **raw-broker** is bench/baseline/raw-broker.mjs (a minimal Unix-socket broker forwarding length-prefixed frames by channel, no features); **raw-p2p** has the sender write straight to each receiver\'s socket. Every client is a separate process. The machine is shared: compare ratios, not absolute times across runs.', '');
  out.push(table({
    header: ['machine', ''],
    rows: [
      ['CPU', `${m.cpu} × ${m.cores}`],
      ['memory', fmt(m.memory, 'bytes')],
      ['OS', m.os],
      ['Node', `${m.node} (V8 ${m.v8})`],
      ['code measured', meta.source ?? '–'],
      ...(meta.qcopdNodeArgs ? [['node flags for qcopd', meta.qcopdNodeArgs]] : []),
      ['load average (1/5/15 min) before', load(meta.loadBefore)],
      ['load average after', load(meta.loadAfter)],
      ['duration', `${meta.seconds?.toFixed(0)} s`],
    ],
  }), '');

  out.push('## Targets', '');
  const targets = Object.values(scenarios).flatMap((s) => s.targets ?? []);
  out.push(table({ header: ['scenario', 'target for qcop', 'measured', 'verdict', 'what limits it (when missed)'], rows: targets.map((t) => [t.scenario, t.target, t.measured, verdict(t.met), t.met === false ? t.limit : '']) }), '');

  for (const s of Object.values(scenarios)) {
    out.push(`## ${s.id}: ${s.title}`, '', `${s.what[0].toUpperCase()}${s.what.slice(1)}.`, '');
    for (const t of s.tables ?? []) out.push(table(t), '');
    if (s.id === 'S6' && svgName) out.push(`![S6 size sweep](${svgName})`, '');
    for (const u of s.unavailable ?? []) out.push(`- ${u.variant}: ${u.why}.`);
    for (const n of s.notes ?? []) out.push(`- ${n}`);
    const failed = s.runs.filter((r) => r.error);
    for (const r of failed) out.push(`- run failed: ${r.variant} rep ${r.rep + 1}: ${r.error}`);
    if ((s.unavailable ?? []).length || (s.notes ?? []).length || failed.length) out.push('');
  }
  if (results.analysis) out.push('## What limits the missed targets', '', results.analysis.trim(), '');
  return out.join('\n');
}
