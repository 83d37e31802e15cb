// The local token of a loopback TCP listener started without one: generated, kept in a 0600 file of
// the user's qcop folder, and found there by same-user clients on this host (like an X11 cookie).
// SPEC §8: the folder is checked (ours, writable by nobody else) and no symbolic link is followed:
// the token goes to a new temporary file (O_EXCL|O_NOFOLLOW) renamed over the name.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultSocketPath } from '../../runtime/index.js';
import { prepareFolder } from '../../runtime/internal.js';

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

/** The file holding the token of the loopback listener on `port`: beside the user's default socket. */
export function localTokenFile(port: number): string {
  const dir = path.dirname(defaultSocketPath({ ...process.env, QCOP_SOCKET: '' }));
  return path.join(dir, `tcp-${port}.token`);
}

/** Generates a token for `port` and writes it (folder 0700, file 0600); returns the token and the file. */
export function writeLocalToken(port: number): { token: string; file: string } {
  const file = localTokenFile(port);
  const dir = path.dirname(file);
  prepareFolder(dir); // EACCES when another user controls it
  const token = randomBytes(24).toString('hex');
  const tmp = path.join(dir, `.tcp-${port}.token.${process.pid}.${randomBytes(6).toString('hex')}`);
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, token + '\n');
    fs.closeSync(fd);
    // rename replaces whatever has the name (a symbolic link included) without following it.
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { token, file };
}

/** The token a local listener on `port` left for same-user clients: only from a regular file of this user. */
export function readLocalToken(port: number): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(localTokenFile(port), O_RDONLY | O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== process.geteuid?.() || st.size > 1024) return undefined;
    return fs.readFileSync(fd, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Removes the token file when it still holds this listener's token. */
export function removeLocalToken(port: number, token: string): void {
  if (readLocalToken(port) !== token) return;
  try {
    fs.unlinkSync(localTokenFile(port));
  } catch {
    // already gone
  }
}
