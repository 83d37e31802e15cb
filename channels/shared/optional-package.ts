// A carrier's npm package that qcop does not install for library users (optional peerDependencies, docs/DECISIONS.md).
import { QcopError } from '../../runtime/index.js';

/**
 * Runs `load`, which must be a literal `import('pkg')` so that bundlers still see the package;
 * rejects with ENOENT naming the package and the npm command that installs it when the package
 * itself is not installed. Any other failure (a broken install, a missing native binary) passes.
 */
export async function importOptional<T>(pkg: string, major: string, carrier: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes(`'${pkg}'`)) throw err;
    throw new QcopError('ENOENT', `the ${carrier} carrier needs the npm package ${pkg}, which is not installed: npm install ${pkg}@${major}`, { cause: err });
  }
}
