// Behaviour of the addon's non-shm calls: SO_PEERCRED on a Unix socket, sd_notify, liveness, errno codes.
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native, nativeAvailable } from '../../runtime/native/index.js';

const codeOf = (e: unknown): string | undefined => (e as { code?: string }).code;

test('the addon loads here', () => {
  assert.is(nativeAvailable(), true);
  assert.ok(native().pageSize >= 4096);
});

test('peerCred on an accepted Unix socket gives the connecting process pid, uid and gid', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qcop-cred-'));
  const path = join(dir, 's.sock');
  const server = createServer();
  try {
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const client = connect(path);
    const sock = await accepted;
    const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    assert.equal(native().peerCred(fd), { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    client.destroy();
    sock.destroy();
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sdNotify is false without NOTIFY_SOCKET and fails with an errno code when nobody listens', () => {
  const saved = process.env.NOTIFY_SOCKET;
  try {
    delete process.env.NOTIFY_SOCKET;
    assert.is(native().sdNotify('READY=1'), false);
    process.env.NOTIFY_SOCKET = join(tmpdir(), `qcop-no-such-${process.pid}.sock`);
    assert.throws(() => native().sdNotify('READY=1'), (e: unknown) => codeOf(e) === 'ENOENT');
  } finally {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET; else process.env.NOTIFY_SOCKET = saved;
  }
});

test('alive() knows this process and a reaped one; errno errors carry the errno name', () => {
  assert.is(native().alive(process.pid), true);
  assert.is(native().alive(0x3ffffff0), false);
  assert.throws(() => native().shmOpen('/qcop.no-such-object', native().flags.O_RDWR, 0), (e: unknown) => codeOf(e) === 'ENOENT');
  assert.throws(() => native().shmUnlink('/qcop.no-such-object'), (e: unknown) => codeOf(e) === 'ENOENT');
});

test.run();
