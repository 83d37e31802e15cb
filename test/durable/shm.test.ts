// SPEC §10 with shared memory: large data sent through the pool to a queued channel are copied out of the slot and stored.
import { createHash, randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pool } from '../shm/pool-env.js';
import { tempDir, waitFor } from '../helpers/procs.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test.after.each(pool.teardown);

test('a 512 KiB message through the pool to a queued channel is stored, its slot freed, and delivered intact later', async () => {
  const socket = await pool.setup({ queued: ['app/*'], stateDir: path.join(tempDir(), 'state') });
  const tx = await pool.client(socket);
  const errors: Array<{ code: string }> = [];
  tx.on('error', (e: { code: string }) => errors.push(e));
  const mid = randomBytes(512 << 10);
  tx.send('app/big', 'blob', mid);
  await tx.flush();
  await waitFor(() => tx.poolInUse.slots === 0, 10_000, 'the slot freed');
  // Too large to be delivered inline later: EMSGSIZE, nothing stored.
  tx.send('app/big', 'huge', randomBytes(2 << 20));
  await tx.flush();
  await waitFor(() => errors.length === 1, 10_000, 'EMSGSIZE');
  assert.is(errors[0]!.code, 'EMSGSIZE');
  const s = (await tx.stats() as any).durable;
  assert.is(s.storedMessages, 1);
  const rx = await pool.receiver(socket, 'app/big');
  await waitFor(() => rx.json().filter((v) => v.ev === 'msg').length === 1, 10_000, 'the stored message');
  const got = rx.json().find((v) => v.ev === 'msg');
  assert.is(got.sha, sha(mid));
  await waitFor(async () => (await tx.stats() as any).durable.storedMessages === 0, 10_000, 'acknowledged');
});

test.run();
