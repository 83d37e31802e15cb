// One option table (runtime/broker/option-table.ts): the config check, `qcop broker --help` and docs/CONFIG.md agree with it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OPTIONS, defaultText } from '../../../runtime/broker/option-table.js';
import { KNOWN_OPTIONS, resolveOptions } from '../../../runtime/broker/options.js';
import { ROOT, runCli } from '../../helpers/procs.js';

/** The rows of docs/CONFIG.md's first table: key → [flag cell, default cell]. */
function configRows(): Map<string, [string, string]> {
  const text = fs.readFileSync(path.join(ROOT, 'docs/CONFIG.md'), 'utf8');
  const rows = new Map<string, [string, string]>();
  for (const line of text.split('\n')) {
    const m = /^\| `([A-Za-z]+)` \| ([^|]*) \| ([^|]*) \|/.exec(line);
    if (m && !rows.has(m[1]!)) rows.set(m[1]!, [m[2]!.trim(), m[3]!.trim()]);
  }
  return rows;
}

test('docs/CONFIG.md has a row for every option, with its flag and default, and no row the table lacks', () => {
  const rows = configRows();
  for (const o of OPTIONS) {
    if (o.kind === 'carrier') continue;
    const row = rows.get(o.key);
    assert.ok(row, `docs/CONFIG.md has no row for ${o.key}`);
    const [flag, dflt] = row!;
    if (o.flag) assert.ok(flag.includes(`\`--${o.flag}`), `${o.key}: flag column '${flag}' names --${o.flag}`);
    else assert.is(flag, '—', `${o.key} has no flag`);
    if (o.key !== 'socket') assert.ok(dflt.replace(/`/g, '').startsWith(defaultText(o)), `${o.key}: default column '${dflt}' starts with ${defaultText(o)}`);
  }
  for (const key of rows.keys()) assert.ok(KNOWN_OPTIONS.has(key), `docs/CONFIG.md documents ${key}, which the table does not know`);
});

test('carrier keys are documented where the carriers are', () => {
  const docs = ['docs/CONFIG.md', 'channels/README.md', 'docs/SERIAL.md'].map((f) => fs.readFileSync(path.join(ROOT, f), 'utf8')).join('\n');
  for (const o of OPTIONS) if (o.kind === 'carrier') assert.ok(docs.includes(`\`${o.key}\``), `${o.key} is documented`);
});

test('resolveOptions fills every default from the table and enforces its bounds', () => {
  const r = resolveOptions({}, '/tmp/x.sock') as unknown as Record<string, unknown>;
  for (const o of OPTIONS) if (o.default !== null) assert.equal(r[o.key], o.default, o.key);
  for (const o of OPTIONS) {
    if (o.kind !== 'int') continue;
    assert.throws(() => resolveOptions({ [o.key]: o.min - 1 } as never, '/tmp/x.sock'), new RegExp(`option ${o.key}: must be an integer from ${o.min}`));
    assert.throws(() => resolveOptions({ [o.key]: o.max + 1 } as never, '/tmp/x.sock'), new RegExp(`option ${o.key}`));
  }
});

test('qcop broker --help lists every flag of the table with its default', async () => {
  const help = (await runCli(['broker', '--help'])).stdout;
  for (const o of OPTIONS) {
    if (!o.flag) continue;
    assert.ok(help.includes(`--${o.flag}`), `--${o.flag} in the help`);
    if (o.kind === 'int') assert.ok(help.includes(`(default ${o.default})`), `${o.flag}'s default in the help`);
  }
});

test('the board profiles (targets/*.json) use only known options', () => {
  const dir = path.join(ROOT, 'targets');
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    const config = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')).config ?? {};
    for (const key of Object.keys(config)) assert.ok(KNOWN_OPTIONS.has(key), `${f}: ${key}`);
    resolveOptions(config, '/tmp/x.sock'); // and valid values
  }
});

test.run();
