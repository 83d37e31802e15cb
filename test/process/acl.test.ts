// SPEC §9 with real users (created as root, removed afterwards): a policy lets user A send on cam/*
// and user B listen on cam/frame only; a third user may do nothing; `qcop acl check` agrees; after
// the policy changes and SIGHUP, the running listener follows it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, Proc, QCOP, ROOT, cleanup, runCli, tempDir, waitFor } from '../helpers/procs.js';
import { TOKEN, freePort } from '../conformance/net.js';
import { assertHealthy, scene } from '../hostile/harness.js';
import { addGroup, addUser, asUser, removeUsers, requireRoot, runAs, type User } from '../hostile/users.js';

test.before(() => requireRoot('test/process/acl.test.ts'));
test.after.each(async () => {
  await cleanup();
  removeUsers();
});

function policyDir(): string {
  const dir = tempDir();
  fs.chmodSync(dir, 0o755);
  return dir;
}

function writePolicy(dir: string, a: User, b: User, bListens: string[]): void {
  const file = path.join(dir, '10-cam.json');
  fs.writeFileSync(`${file}.new`, JSON.stringify({ rules: [{ user: a.name, send: ['cam/*'] }, { user: b.name, listen: bListens }] }));
  fs.renameSync(`${file}.new`, file);
}

test('a sends on cam/*, b listens on cam/frame only, a third user nothing; acl check agrees; SIGHUP applies a change to the running listener', async () => {
  const group = addGroup('grp');
  const [a, b, c] = [addUser('prd', group.name), addUser('rcv', group.name), addUser('out', group.name)];
  const dir = policyDir();
  writePolicy(dir, a, b, ['cam/frame']);
  const s = await scene(['--group', group.name, '--acl-dir', dir]);
  fs.chmodSync(path.dirname(s.broker.socket), 0o750); // the test's folder: the group may reach the socket
  fs.chownSync(path.dirname(s.broker.socket), 0, group.gid);
  const as = (u: User, args: string[]) => runAs(u, process.execPath, [QCOP, ...args, '--socket', s.broker.socket], {}, [group.gid]);

  // b listens on the pattern cam/*: accepted, and filtered per channel.
  const listener = asUser(b, process.execPath, [QCOP, 'listen', 'cam/*', '--socket', s.broker.socket], {}, [group.gid]);
  await waitFor(async () => (await runCli(['registered', 'cam/frame', '--socket', s.broker.socket])).code === 0, 10000, "b's listener");
  assert.is((await runCli(['registered', 'cam/other', '--socket', s.broker.socket])).code, 1, 'nobody may receive on cam/other');
  for (const [channel, n] of [['cam/frame', 1], ['cam/other', 2], ['cam/frame', 3]] as const) {
    const sent = await as(a, ['send', channel, 'm(int)', String(n)]);
    assert.is(sent.code, 0, `a sends on ${channel}: ${sent.stderr}`);
  }
  await waitFor(() => listener.lines.length >= 2, 10000, "b's two messages");
  assert.equal(listener.json().map((m) => [m.channel, m.data]), [['cam/frame', 1], ['cam/frame', 3]], 'cam/other never reached b');

  // b may not send; c may do nothing at all.
  const bSends = await as(b, ['send', 'cam/frame', 'm(int)', '9']);
  assert.equal([bSends.code, /^EACCES: /m.test(bSends.stderr)], [1, true], bSends.stderr);
  for (const args of [['send', 'cam/frame', 'm(int)', '9'], ['listen', 'cam/frame', '--count', '1', '--timeout', '5'], ['registered', 'cam/frame'], ['stats'], ['call', 'cam/frame', 'm()', '--timeout', '2']]) {
    const r = await as(c, args);
    assert.equal([r.code, /^EACCES: /m.test(r.stderr)], [1, true], `c: qcop ${args[0]}: ${r.stderr}`);
  }

  // qcop acl check says the same.
  const check = async (u: User, action: string, channel: string) => {
    const r = await runCli(['acl', 'check', u.name, action, channel, '--acl-dir', dir]);
    return [r.code, JSON.parse(r.stdout).allowed];
  };
  assert.equal(await check(a, 'send', 'cam/frame'), [0, true]);
  assert.equal(await check(b, 'listen', 'cam/frame'), [0, true]);
  assert.equal(await check(b, 'listen', 'cam/other'), [1, false]);
  assert.equal(await check(b, 'send', 'cam/frame'), [1, false]);
  assert.equal(await check(c, 'listen', 'cam/frame'), [1, false]);

  // The policy changes: b may listen on cam/other too; SIGHUP; the running listener gets it.
  writePolicy(dir, a, b, ['cam/frame', 'cam/other']);
  s.broker.child.kill('SIGHUP');
  await waitFor(async () => (await runCli(['registered', 'cam/other', '--socket', s.broker.socket])).code === 0, 10000, 'the reloaded policy');
  assert.is((await as(a, ['send', 'cam/other', 'm(int)', '4'])).code, 0);
  await waitFor(() => listener.lines.length >= 3, 10000, 'cam/other after the reload');
  assert.equal(listener.json()[2], { channel: 'cam/other', message: 'm(int)', data: 4 });

  // A bad file is refused whole: the policy in force stays.
  fs.writeFileSync(path.join(dir, '20-bad.json'), '{"rules": [{"user": "nobody-such-user-qcop", "send": ["x"]}]}');
  s.broker.child.kill('SIGHUP');
  await waitFor(() => /acl: .*20-bad\.json.*the previous policy stays/.test(s.broker.stderr), 10000, 'the refusal logged');
  assert.is((await as(a, ['send', 'cam/other', 'm(int)', '5'])).code, 0, 'the old policy still lets a send');
  fs.rmSync(path.join(dir, '20-bad.json'));

  // Taken away: b's listener on cam/* is removed at the next reload, and b hears EACCES.
  writePolicy(dir, a, b, []);
  const reload = await runCli(['broker', '--reload', '--socket', s.broker.socket]);
  assert.is(reload.code, 0, reload.stderr);
  await waitFor(() => /EACCES/.test(listener.stderr), 10000, "b's EACCES");
  await waitFor(async () => (await runCli(['registered', 'cam/frame', '--socket', s.broker.socket])).code === 1, 10000, "b's listener gone");
  const stats = JSON.parse((await runCli(['stats', '--socket', s.broker.socket])).stdout);
  assert.ok(stats.acl.enabled && stats.acl.reloads === 2 && stats.acl.reloadFailures === 1, JSON.stringify(stats.acl));
  assert.ok(stats.acl.deniedByUser[String(c.uid)] >= 5, 'c\'s denials are counted');
  await assertHealthy(s);
});

test('monitor (SPEC §12): refused to a user without a monitor rule; a rule on cam/* shows only cam/* events, no connection events', async () => {
  const group = addGroup('grp');
  const [m, o] = [addUser('mon', group.name), addUser('out', group.name)];
  const dir = policyDir();
  fs.writeFileSync(path.join(dir, 'm.json'), JSON.stringify({ rules: [{ user: m.name, monitor: ['cam/*'] }, { user: '*', send: ['*'] }] }));
  const s = await scene(['--group', group.name, '--acl-dir', dir]);
  fs.chmodSync(path.dirname(s.broker.socket), 0o750);
  fs.chownSync(path.dirname(s.broker.socket), 0, group.gid);
  const refused = await runAs(o, process.execPath, [QCOP, 'monitor', '--socket', s.broker.socket], {}, [group.gid]);
  assert.equal([refused.code, /^EACCES: .*may not monitor everything/m.test(refused.stderr)], [1, true], refused.stderr);
  const mon = asUser(m, process.execPath, [QCOP, 'monitor', '--socket', s.broker.socket], {}, [group.gid]);
  await waitFor(async () => JSON.parse((await runCli(['stats', '--socket', s.broker.socket])).stdout).monitors.connections === 1, 10000, "m's monitor");
  for (const channel of ['ui/x', 'cam/x']) assert.is((await runCli(['send', channel, 'm(int)', '1', '--socket', s.broker.socket])).code, 0);
  await mon.waitJson((e) => e.channel === 'cam/x', 10000, 'the cam/x send');
  assert.equal(mon.json().map((e) => [e.event, e.channel]), [['send', 'cam/x']], 'neither ui/x nor connection events');
  const root = new Proc(process.execPath, [QCOP, 'monitor', '--socket', s.broker.socket]);
  await waitFor(async () => JSON.parse((await runCli(['stats', '--socket', s.broker.socket])).stdout).monitors.connections === 2, 10000, 'root may monitor everything');
  root.kill('SIGTERM');
  await assertHealthy(s);
});

test('a broker whose policy folder does not load does not start: EINVAL naming the file, exit 2', async () => {
  const dir = policyDir();
  fs.writeFileSync(path.join(dir, 'broken.json'), '{"rules": [');
  const r = await runCli(['broker', '--socket', path.join(tempDir(), 'q.sock'), '--acl-dir', dir]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /^EINVAL: .*broken\.json/m);
});

test('quotas per user: a at its listener and connection quotas gets ELIMIT; b, unlimited, is not affected; stats shows each user', async () => {
  const group = addGroup('grp');
  const [a, b] = [addUser('prd', group.name), addUser('rcv', group.name)];
  const dir = policyDir();
  fs.writeFileSync(path.join(dir, 'q.json'), JSON.stringify({ rules: [
    { user: a.name, listen: ['q/*'], quota: { listeners: 2, connections: 2 } },
    { user: b.name, listen: ['q/*'] },
  ] }));
  const s = await scene(['--group', group.name, '--acl-dir', dir]);
  fs.chmodSync(path.dirname(s.broker.socket), 0o750);
  fs.chownSync(path.dirname(s.broker.socket), 0, group.gid);
  const listen = (u: User, names: string[]) => asUser(u, process.execPath, [QCOP, 'listen', ...names, '--socket', s.broker.socket], {}, [group.gid]);
  const users = async () => JSON.parse((await runCli(['stats', '--socket', s.broker.socket])).stdout).users;

  const three = listen(a, ['q/1', 'q/2', 'q/3']);
  const { code } = await three.exited;
  assert.is(code, 1, 'the third listener name is refused');
  assert.match(three.stderr, /^ELIMIT: .*listener quota/m);

  const held = [listen(a, ['q/1']), listen(a, ['q/2'])];
  await waitFor(async () => (await users())[String(a.uid)]?.connections === 2, 10000, "a's two connections");
  const third = listen(a, ['q/x']);
  assert.is((await third.exited).code, 1, 'a third connection of a is refused');
  assert.match(third.stderr, /ELIMIT/);
  const many = listen(b, ['q/1', 'q/2', 'q/3', 'q/4', 'q/5']);
  await waitFor(async () => (await users())[String(b.uid)]?.listeners === 5, 10000, "b's five listeners, a at its quota");
  const u = (await users())[String(a.uid)];
  assert.equal([u.connections, u.listeners, u.limits.listeners, u.limits.connections], [2, 2, 2, 2]);
  assert.ok(u.refused >= 2, `a's refusals are counted (${u.refused})`);
  for (const p of [...held, many]) p.kill();
  await waitFor(async () => (await users())[String(a.uid)] === undefined, 10000, "a's usage given back when its connections close");
  await assertHealthy(s);
});

test('shared memory between users: a segment created { group } is attached by a member with { owner }, not by an outsider', async () => {
  const group = addGroup('grp');
  const [a, b, c] = [addUser('prd', group.name), addUser('rcv', group.name), addUser('out')];
  const api = JSON.stringify(path.join(ROOT, 'dist/runtime/index.js'));
  const creator = asUser(a, process.execPath, ['--input-type=module', '-e',
    `const { SharedMemory } = await import(${api}); const m = await SharedMemory.create('shared/cfg', 4096, { group: ${group.gid} }); m.buffer.write('hello from a'); console.log(JSON.stringify({ ready: true })); setInterval(() => {}, 1000);`], {}, [group.gid]);
  await creator.waitJson((v) => v.ready === true, 10000, "a's segment");
  const attach = (u: User, groups: number[]) => runAs(u, process.execPath, ['--input-type=module', '-e',
    `const { SharedMemory } = await import(${api}); try { const m = await SharedMemory.attach('shared/cfg', { owner: ${JSON.stringify(a.name)}, readOnly: true }); console.log(JSON.stringify(m.buffer.toString('utf8', 0, 12))); m.detach(); } catch (e) { console.log(JSON.stringify(e.code)); }`], {}, groups);
  assert.is((await attach(b, [group.gid])).stdout, '"hello from a"', 'a member of the group reads it');
  assert.is((await attach(c, [])).stdout, '"EACCES"', 'an outsider cannot');
  const own = await runAs(b, process.execPath, ['--input-type=module', '-e',
    `const { SharedMemory } = await import(${api}); try { await SharedMemory.attach('shared/cfg'); console.log('"attached"'); } catch (e) { console.log(JSON.stringify(e.code)); }`], {}, [group.gid]);
  assert.is(own.stdout, '"ENOENT"', 'without owner, b looks for its own key');
});

test('a TCP client acts as tcpUser under the policy; without tcpUser it is nobody', async () => {
  const group = addGroup('grp');
  const a = addUser('prd', group.name);
  for (const [tcpUser, allowed] of [[a.name, true], [null, false]] as const) {
    const dir = policyDir();
    fs.writeFileSync(path.join(dir, 'tcp.json'), JSON.stringify({ rules: [{ user: a.name, send: ['cam/*'] }] }));
    const port = await freePort();
    const s = await scene(['--acl-dir', dir, '--tcp', `127.0.0.1:${port}`, '--tcp-token', TOKEN, ...(tcpUser ? ['--tcp-user', tcpUser] : [])]);
    const tcp = new Proc(process.execPath, [path.join(FIXTURES, 'client.mjs'), `tcp://127.0.0.1:${port}`, 'tcp-client'], { QCOP_TEST_TOKEN: TOKEN });
    await tcp.waitJson((v) => v.ev === 'ready', 10000, 'the TCP client');
    const tags = { n: 0 };
    const run = async (cmd: Record<string, unknown>) => {
      const tag = `t${++tags.n}`;
      tcp.command({ ...cmd, tag });
      return tcp.waitJson((v) => (v.ev === 'done' || v.ev === 'failed') && v.tag === tag, 10000, String(cmd.op));
    };
    await run({ op: 'send', channel: 'cam/frame', message: 'm(int)', data: 1 });
    await run({ op: 'send', channel: 'x/y', message: 'm(int)', data: 2 });
    await run({ op: 'flush' });
    await waitFor(() => tcp.json().some((v) => v.ev === 'error'), 10000, 'the refusal');
    const refused = tcp.json().filter((v) => v.ev === 'error').map((v) => [v.code, /cam\/frame|x\/y/.exec(v.message)?.[0]]);
    assert.equal(refused, allowed ? [['EACCES', 'x/y']] : [['EACCES', 'cam/frame'], ['EACCES', 'x/y']], `tcpUser ${tcpUser}`);
    await assertHealthy(s);
    await cleanup();
  }
});

test.run();
