// qcopd under systemd's Type=notify: READY=1 once the socket accepts, STOPPING=1 on SIGTERM, no systemd-notify needed.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Proc, QCOPD, cleanup, socketAnswers, tempDir, waitFor } from '../helpers/procs.js';

test.after.each(() => cleanup());

function requireSocat(): void {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('socat is missing: install it with `apt-get install -y socat` (scripts/setup-system.sh does)');
  }
}

test('READY=1 arrives on NOTIFY_SOCKET only when the socket accepts; STOPPING=1 on SIGTERM; exit 0', async () => {
  requireSocat();
  const dir = tempDir();
  const notify = path.join(dir, 'notify.sock');
  const sock = path.join(dir, 'q.sock');
  const received = path.join(dir, 'received.txt');
  // socat receives datagrams on a Unix socket as systemd does, and appends them to a file.
  const receiver = new Proc('socat', ['-u', `UNIX-RECV:${notify}`, `OPEN:${received},creat,append`]);
  await waitFor(() => fs.existsSync(notify), 5000, 'the notify socket');
  const broker = new Proc(process.execPath, [QCOPD, '--socket', sock], { NOTIFY_SOCKET: notify });
  await waitFor(() => fs.existsSync(received) && fs.readFileSync(received, 'utf8').includes('READY=1'), 10000, 'READY=1');
  assert.ok(await socketAnswers(sock), 'the socket accepts by the time READY=1 is sent');
  broker.kill('SIGTERM');
  const { code } = await broker.exited;
  assert.is(code, 0);
  await waitFor(() => fs.readFileSync(received, 'utf8').includes('STOPPING=1'), 5000, 'STOPPING=1');
  assert.ok(!fs.existsSync(sock), 'the socket file is removed on SIGTERM');
  receiver.kill('SIGKILL');
});

test.run();
