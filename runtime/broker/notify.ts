// systemd readiness (Type=notify): READY once the socket accepts, STOPPING on shutdown, without systemd-notify.
import { nativeAvailable, native } from '../native/index.js';

/** Sends one sd_notify message when systemd asked for it (NOTIFY_SOCKET); returns whether it was sent. */
export function sdNotify(text: string): boolean {
  if (!process.env.NOTIFY_SOCKET) return false;
  // Node has no Unix datagram sockets: the native part sends it.
  if (!nativeAvailable()) {
    process.stderr.write('qcopd: warn: NOTIFY_SOCKET is set but the native part is missing; systemd will not see READY\n');
    return false;
  }
  try {
    return native().sdNotify(text);
  } catch (err) {
    process.stderr.write(`qcopd: warn: sd_notify failed: ${(err as Error).message}\n`);
    return false;
  }
}
