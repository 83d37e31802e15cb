// Reading the policy folder (aclDir) within bounds: which files, in which order, each at most 1 MiB, checked before anything is allocated for it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QcopError } from '../../protocol/errors.js';
import { ACL_LIMITS } from './schema.js';

/** One policy file's text, with the name its rules are labelled by. */
export interface SourceFile {
  /** File name without folder: `10-ui.json`. */
  name: string;
  path: string;
  text: string;
}

const CHUNK = 64 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The `*.json` files of `dir` (names starting with `.` skipped), sorted by name in code-unit
 * order, read whole. EINVAL naming the folder or the file when there are more than
 * ACL_LIMITS.files, when a file is not a regular file, is larger than ACL_LIMITS.fileBytes or
 * is not UTF-8; EACCES when the folder or a file can be written by every user (a policy anyone
 * may edit grants nothing).
 */
export function readPolicyFolder(dir: string): SourceFile[] {
  let handle: fs.Dir;
  try {
    handle = fs.opendirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new QcopError('EINVAL', `acl folder ${dir} ${code === 'ENOENT' ? 'does not exist' : 'is not a folder'}`);
    throw QcopError.fromSystem(err, `reading acl folder ${dir}`);
  }
  const names: string[] = [];
  try {
    if (fs.statSync(dir).mode & 0o002) throw new QcopError('EACCES', `acl folder ${dir} can be written by every user: chmod o-w ${dir}`);
    for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
      if (!entry.name.endsWith('.json') || entry.name.startsWith('.')) continue;
      if (names.length === ACL_LIMITS.files) throw new QcopError('EINVAL', `acl folder ${dir} holds more than ${ACL_LIMITS.files} policy files (*.json)`);
      names.push(entry.name);
    }
  } finally {
    handle.closeSync();
  }
  names.sort();
  return names.map((name) => {
    const file = path.join(dir, name);
    return { name, path: file, text: readBounded(file) };
  });
}

/** The text of one policy file, refusing it before reading when it is too large (and while reading, if it grows). */
function readBounded(file: string): string {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO named *.json must not hang the load (it is refused below as not a regular file).
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw QcopError.fromSystem(err, `reading acl file ${file}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new QcopError('EINVAL', `acl file ${file} is not a regular file`);
    if (st.mode & 0o002) throw new QcopError('EACCES', `acl file ${file} can be written by every user: chmod o-w ${file}`);
    const tooLarge = () => new QcopError('EINVAL', `acl file ${file} is larger than ${ACL_LIMITS.fileBytes} bytes`);
    if (st.size > ACL_LIMITS.fileBytes) throw tooLarge();
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, ACL_LIMITS.fileBytes + 1 - total));
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > ACL_LIMITS.fileBytes) throw tooLarge();
    }
    try {
      return utf8.decode(Buffer.concat(chunks, total)); // a leading byte-order mark is dropped
    } catch {
      throw new QcopError('EINVAL', `acl file ${file} is not valid UTF-8`);
    }
  } catch (err) {
    if (err instanceof QcopError) throw err;
    throw QcopError.fromSystem(err, `reading acl file ${file}`);
  } finally {
    fs.closeSync(fd);
  }
}
