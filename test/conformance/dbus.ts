// A private dbus-daemon for tests (docs/PLATFORM-NOTES.md §8), which can be stopped and started again.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir, waitFor } from '../helpers/procs.js';

export class PrivateBus {
  readonly dir = tempDir();
  readonly socket = path.join(this.dir, 'bus.sock');
  readonly address = `unix:path=${this.socket}`;
  private pid = 0;

  async start(): Promise<this> {
    const config = path.join(this.dir, 'bus.conf');
    fs.writeFileSync(config, `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${this.socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`);
    const out = execFileSync('dbus-daemon', [`--config-file=${config}`, '--fork', '--nosyslog', '--print-address=1', '--print-pid=1'], { encoding: 'utf8' });
    this.pid = Number(out.trim().split('\n').pop());
    await waitFor(() => fs.existsSync(this.socket), 5000, 'the dbus-daemon socket');
    return this;
  }

  async stop(): Promise<void> {
    if (!this.pid) return;
    const pid = this.pid;
    this.pid = 0;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 5000, 'dbus-daemon to exit');
    fs.rmSync(this.socket, { force: true });
  }
}

/** Runs dbus-send against the bus; returns stdout. */
export function dbusSend(bus: PrivateBus, args: string[]): string {
  return execFileSync('dbus-send', [`--bus=${bus.address}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
