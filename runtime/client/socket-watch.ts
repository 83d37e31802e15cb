// Reconnecting the moment a broker comes back: while disconnected from a Unix socket, the client watches
// the socket's folder and dials as soon as the socket is created again, instead of only at its next backoff step.
import { watch, type FSWatcher } from 'node:fs';
import * as path from 'node:path';

/**
 * Calls `appeared` (at most once per 10 ms) whenever the entry `socketPath` is created or changed in its
 * folder; returns the function that stops watching. When the folder cannot be watched (gone, no inotify),
 * it does nothing and the caller's backoff alone reconnects.
 */
export function watchSocket(socketPath: string, appeared: () => void): () => void {
  const dir = path.dirname(socketPath);
  const base = path.basename(socketPath);
  let w: FSWatcher | null = null;
  let last = 0;
  try {
    w = watch(dir, { persistent: false }, (_event, file) => {
      if (file !== null && String(file) !== base) return;
      const now = Date.now();
      if (now - last < 10) return;
      last = now;
      appeared();
    });
    w.on('error', () => stop());
  } catch {
    w = null;
  }
  function stop(): void {
    try { w?.close(); } catch { /* closed */ }
    w = null;
  }
  return stop;
}
