// A carrier's optional npm package: missing, it is named with its install command; any other failure passes unchanged.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { importOptional } from '../../channels/shared/optional-package.js';
import { QcopError } from '../../runtime/index.js';

const MISSING = 'qcop-test-no-such-package';

test('a package that is not installed: ENOENT naming it, its carrier and the install command', async () => {
  const err = await importOptional(MISSING, '2', 'serial', () => import(MISSING)).then(() => null, (e: unknown) => e);
  assert.instance(err, QcopError);
  assert.is((err as QcopError).code, 'ENOENT');
  assert.is((err as Error).message, `ENOENT: the serial carrier needs the npm package ${MISSING}, which is not installed: npm install ${MISSING}@2`);
  assert.is(((err as Error).cause as NodeJS.ErrnoException).code, 'ERR_MODULE_NOT_FOUND');
});

const PASSED_THROUGH: Array<[string, () => Error]> = [
  ['a package it depends on is missing', () => Object.assign(new Error(`Cannot find package '@${MISSING}/binding' imported from x.js`), { code: 'ERR_MODULE_NOT_FOUND' })],
  ['the package fails while loading', () => new Error('No native build was found for platform=linux')],
];

for (const [what, make] of PASSED_THROUGH) {
  test(`passed through unchanged: ${what}`, async () => {
    const thrown = make();
    const err = await importOptional(MISSING, '2', 'serial', () => Promise.reject(thrown)).then(() => null, (e: unknown) => e);
    assert.is(err, thrown);
  });
}

test('an installed package is returned as imported', async () => {
  const mod = await importOptional('node:path', '1', 'test', () => import('node:path'));
  assert.type(mod.join, 'function');
});

test.run();
