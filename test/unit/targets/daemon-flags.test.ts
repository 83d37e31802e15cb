// qcopd's Node flags (targets/daemon-flags.mjs) are the same wherever the daemon starts: the board unit,
// bin/qcopd.js's first line, `npm start`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DAEMON_NODE_FLAGS } from '../../../targets/daemon-flags.mjs';
// @ts-expect-error: build code in plain JavaScript, no declarations
import { writeFiles } from '../../../targets/build/assemble.mjs';
// @ts-expect-error: build code in plain JavaScript, no declarations
import { loadProfiles } from '../../../targets/build/profiles.mjs';
import { ROOT } from '../../helpers/procs.js';

const flags = DAEMON_NODE_FLAGS.join(' ');

test('the flags bound the young generation', () => {
  assert.ok(DAEMON_NODE_FLAGS.some((f) => /^--max-semi-space-size=\d+$/.test(f)), flags);
});

test("bin/qcopd.js's first line runs node with them", () => {
  const first = fs.readFileSync(path.join(ROOT, 'bin/qcopd.js'), 'utf8').split('\n')[0];
  assert.is(first, `#!/usr/bin/env -S node ${flags}`);
});

test('npm start runs qcopd with them', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.is(pkg.scripts.start, `node ${flags} bin/qcopd.js`);
});

test("a board bundle's unit starts node with them", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-unit-'));
  try {
    const profiles = loadProfiles() as Record<string, unknown>;
    for (const [name, profile] of Object.entries(profiles)) {
      writeFiles(profile, dir, [], '0.0.0');
      const unit = fs.readFileSync(path.join(dir, 'qcopd.service'), 'utf8');
      assert.match(unit, `\nExecStart=/usr/bin/node ${flags} /opt/qcop/qcopd.js `, name);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
