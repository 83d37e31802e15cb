// SPEC §9, every request kind with real users (created as root, removed afterwards): what a policy
// grants works, everything else is EACCES for that request alone, and a user's quotas on watches,
// calls in flight and shared-memory bytes give ELIMIT to that user only.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, Proc, ROOT, cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { assertHealthy, scene, type Scene } from '../hostile/harness.js';
import { addGroup, addUser, asUser, removeUsers, requireRoot, runAs, type User } from '../hostile/users.js';

test.before(() => requireRoot('test/process/acl-kinds.test.ts'));
test.after.each(async () => {
  await cleanup();
  removeUsers();
});

const API = JSON.stringify(path.join(ROOT, 'dist/runtime/index.js'));
const KINDS = path.join(FIXTURES, 'acl-kinds.mjs');

/** A broker with `rules`, its socket reachable by `group`, and a root service on svc/echo that prints what it gets. */
async function setUp(group: { name: string; gid: number }, rules: unknown[]): Promise<{ s: Scene; echo: Proc }> {
  const dir = tempDir();
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, '10-kinds.json'), JSON.stringify({ rules }));
  const s = await scene(['--group', group.name, '--acl-dir', dir]);
  fs.chmodSync(path.dirname(s.broker.socket), 0o750);
  fs.chownSync(path.dirname(s.broker.socket), 0, group.gid);
  const echo = new Proc(process.execPath, ['--input-type=module', '-e', `
    const { connect } = await import(${API});
    const client = await connect({ socket: ${JSON.stringify(s.broker.socket)}, name: 'echo' });
    await client.listen('svc/echo', (msg) => {
      console.log(JSON.stringify({ message: msg.message, size: msg.data?.length ?? null }));
      if (msg.message === 'twice(int)') msg.reply(msg.data * 2);
      if (msg.message === 'slow(int)') setTimeout(() => msg.reply(msg.data), 3000);
    }).ready;
    console.log(JSON.stringify({ ready: true }));`]);
  await echo.waitJson((v) => v.ready === true, 10000, 'the echo service');
  return { s, echo };
}

test('every request kind: granted ones work, the rest are EACCES one by one; a user without rules gets EACCES for all', async () => {
  const group = addGroup('grp');
  const [a, c] = [addUser('prd', group.name), addUser('out', group.name)];
  const { s, echo } = await setUp(group, [
    { user: a.name, send: ['svc/*'], listen: ['svc/mine', 'svc/clock'], watch: ['svc/*'], monitor: ['svc/*', 'qcop/stats'] },
    { user: c.name, comment: 'named, granted nothing' },
  ]);
  const kinds = async (u: User) => {
    const r = await runAs(u, process.execPath, [KINDS, s.broker.socket], {}, [group.gid]);
    assert.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };

  const granted = await kinds(a);
  assert.equal(granted, {
    send: 'ok', large: 'ok', deliver: 'ok', call: 'ok', listen: 'ok', listenPattern: 'ok', listenOther: 'EACCES',
    watch: 'ok', isRegistered: 'ok', stats: 'ok', monitor: 'ok',
  });
  await waitFor(() => echo.json().filter((v) => v.message).length >= 4, 10000, "a's four messages");
  assert.equal(echo.json().filter((v) => v.message).map((v) => [v.message, v.size]), [
    ['m(int)', null], ['big(QByteArray)', 256 * 1024], ['m(int)', null], ['twice(int)', null],
  ], 'send, a large send through the pool, deliver and call reached the service, in order');

  const refused = await kinds(c);
  assert.equal(refused, {
    send: 'EACCES', large: 'EACCES', deliver: 'EACCES', call: 'EACCES', listen: 'EACCES', listenPattern: 'EACCES', listenOther: 'EACCES',
    watch: 'EACCES', isRegistered: 'EACCES', stats: 'EACCES', monitor: 'EACCES',
  });
  assert.is(echo.json().filter((v) => v.message).length, 4, "nothing of c's reached the service");

  // A reply: a answers calls on svc/clock, where it may listen; root's call gets a's answer.
  const replier = asUser(a, process.execPath, [path.join(FIXTURES, 'replier.mjs'), s.broker.socket], {}, [group.gid]);
  await replier.waitJson((v) => v.ready === true, 10000, "a's replier");
  const called = await runCli(['call', 'svc/clock', 'now(int)', '7', '--socket', s.broker.socket]);
  assert.equal([called.code, JSON.parse(called.stdout)], [0, { echo: 7 }], called.stderr);

  const stats = JSON.parse((await runCli(['stats', '--socket', s.broker.socket])).stdout);
  assert.is(stats.acl.deniedByUser[String(a.uid)], 1, "a's one denial (listen on other/x) is counted");
  assert.ok(stats.acl.deniedByUser[String(c.uid)] >= 11, `c's denials are counted: ${JSON.stringify(stats.acl.deniedByUser)}`);
  await assertHealthy(s);
});

test('quotas on watches, calls in flight and shared-memory bytes: ELIMIT for that user; another user is not affected', async () => {
  const group = addGroup('grp');
  const [q, b] = [addUser('prd', group.name), addUser('rcv', group.name)];
  const { s } = await setUp(group, [
    { user: q.name, send: ['svc/*'], watch: ['*'], quota: { watches: 1, callsInFlight: 1, shmBytes: 65536 } },
    { user: b.name, send: ['svc/*'], watch: ['*'] },
  ]);
  const script = `
    const { connect } = await import(${API});
    const client = await connect({ socket: ${JSON.stringify(s.broker.socket)}, name: 'quota' });
    const errors = [];
    client.on('error', (e) => errors.push(e.code));
    const code = (p) => p.then(() => 'ok', (e) => e.code ?? String(e));
    const out = {};
    out.watches = [await code(client.watch('svc/*', () => {}).ready), await code(client.watch('x/*', () => {}).ready)];
    out.calls = await Promise.all([code(client.call('svc/echo', 'slow(int)', 1, { timeoutMs: 8000 })), new Promise((r) => setTimeout(r, 300)).then(() => code(client.call('svc/echo', 'slow(int)', 2, { timeoutMs: 8000 })))]);
    client.send('svc/echo', 'big(QByteArray)', Buffer.alloc(256 * 1024, 1));
    await client.flush().catch((e) => errors.push('flush ' + e.code));
    await new Promise((r) => setTimeout(r, 200));
    out.large = errors.length ? errors : 'ok';
    console.log(JSON.stringify(out));
    await client.close();`;
  const run = async (u: User) => {
    const r = await runAs(u, process.execPath, ['--input-type=module', '-e', script], {}, [group.gid]);
    assert.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const [atQuota, free] = await Promise.all([run(q), run(b)]);
  assert.equal(atQuota.watches, ['ok', 'ELIMIT'], 'the second watch is past the quota');
  assert.equal(atQuota.calls, ['ok', 'ELIMIT'], 'the second call in flight is past the quota');
  assert.ok(Array.isArray(atQuota.large) && atQuota.large.includes('ELIMIT'), `the pool past shmBytes is ELIMIT, told: ${JSON.stringify(atQuota.large)}`);
  assert.equal(free, { watches: ['ok', 'ok'], calls: ['ok', 'ok'], large: 'ok' }, 'b, with no quota, is not affected');
  const user = JSON.parse((await runCli(['stats', '--socket', s.broker.socket])).stdout).users;
  assert.is(user[String(q.uid)], undefined, "q's usage is given back when it leaves");
  await assertHealthy(s);
});

test.run();
