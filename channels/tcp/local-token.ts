// The local token of a loopback TCP listener started without one: generated, kept in a 0600 file of
// the user's qcop folder, and found there by same-user clients on this host (like an X11 cookie).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultSocketPath } from '../../runtime/index.js';

/** The file holding the token of the loopback listener on `port`: beside the user's default socket. */
export function localTokenFile(port: number): string {
  const dir = path.dirname(defaultSocketPath({ ...process.env, QCOP_SOCKET: '' }));
  return path.join(dir, `tcp-${port}.token`);
}

/** Generates a token for `port` and writes it (folder 0700, file 0600); returns the token and the file. */
export function writeLocalToken(port: number): { token: string; file: string } {
  const file = localTokenFile(port);
  const token = randomBytes(24).toString('hex');
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, token + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return { token, file };
}

/** The token a local listener on `port` left for same-user clients, if any. */
export function readLocalToken(port: number): string | undefined {
  try {
    return fs.readFileSync(localTokenFile(port), 'utf8').trim() || undefined;
  } catch {
    return undefined;
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
