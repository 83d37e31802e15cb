// Files between users (SPEC §8): a socket folder squatted by another user, a symbolic link named like
// the TCP token file, and --group giving the socket to its group. Real users, real processes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, Proc, QCOP, QCOPD, cleanup, socketAnswers, spawnBroker, tempDir, waitFor } from '../helpers/procs.js';
import { freePort } from '../conformance/net.js';
import { assertHealthy } from './harness.js';
import { addGroup, addUser, asUser, removeLater, removeUsers, requireRoot, runAs, sceneAround, type User } from './users.js';

requireRoot('test/hostile/files.test.ts');
const node = process.execPath;

test.after.each(async () => {
  cleanup();
  await new Promise((r) => setTimeout(r, 100)); // let the killed processes of the users go before userdel
  removeUsers();
});

/** A folder every user can traverse, for files the victim owns. */
function openDir(): string {
  const d = tempDir();
  fs.chmodSync(d, 0o755);
  return d;
}

/** Starts the user's broker (default socket unless `args` say otherwise) and waits for its socket, or TCP line. */
async function userBroker(user: User, args: string[], socket: string): Promise<Proc> {
  const p = asUser(user, node, [QCOPD, '--log-level', 'error', ...args]);
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`broker exited: ${p.stderr}`);
    return (!args.includes('--tcp') || /listening on tcp:/.test(p.stderr)) && socketAnswers(socket);
  }, 10000, `${user.name}'s broker`);
  return p;
}

test("another user pre-created /tmp/qcop-<uid>: the victim's broker refuses it, and its qcop send never reaches the squatter", async () => {
  const attacker = addUser('atk');
  const victim = addUser('vic');
  const dir = `/tmp/qcop-${victim.uid}`;
  const socket = `${dir}/qcop.sock`;
  // First a symbolic link in its place, to a folder the attacker picked: never followed.
  assert.is((await runAs(attacker, 'ln', ['-s', openDir(), dir])).code, 0);
  for (const cmd of [[QCOPD], [QCOP, 'send', 'secret/pin', 'set(QString)', '"1234"']]) {
    const r = await runAs(victim, node, cmd);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, `EACCES: ${cmd[0] === QCOPD ? '' : `not connecting to ${socket}: `}`);
    assert.match(r.stderr, `${dir} is a symbolic link; qcop never follows one it did not create`);
  }
  fs.rmSync(dir);
  assert.is((await runAs(attacker, 'mkdir', ['-m', '0777', dir])).code, 0);
  assert.is(fs.statSync(dir).uid, attacker.uid);

  const refused = await runAs(victim, node, [QCOPD]);
  assert.is(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, new RegExp(`^EACCES: the socket folder ${dir} belongs to uid ${attacker.uid}, not to uid ${victim.uid}`));
  assert.match(refused.stderr, `Remove it as root (rm -r ${dir})`);
  assert.not.ok(fs.existsSync(socket), 'no socket in the squatted folder');

  // The squatter listens where the victim's default socket is, first in a 0777 folder, then in a tidy 0755 one.
  const squatter = asUser(attacker, node, [path.join(FIXTURES, 'fake-broker.mjs'), socket, 'record']);
  await squatter.waitJson((v) => v.ev === 'listening', 10000, 'the squatter');
  for (const mode of ['0777', '0755']) {
    assert.is((await runAs(attacker, 'chmod', [mode, dir])).code, 0);
    const sent = await runAs(victim, node, [QCOP, 'send', 'secret/pin', 'set(QString)', '"1234"']);
    assert.is(sent.code, 1, sent.stdout);
    assert.match(sent.stderr, new RegExp(`^EACCES: not connecting to ${socket}: its folder ${dir} belongs to uid ${attacker.uid}`));
  }
  assert.equal(squatter.json().filter((v) => v.ev !== 'listening'), [], 'the squatter got no connection, no byte');
  squatter.kill();
  await squatter.exited;

  // A folder of the victim's own that others may write is refused too, with the fix to apply.
  const own = openDir();
  fs.chownSync(own, victim.uid, victim.gid);
  fs.chmodSync(own, 0o777);
  const loose = await runAs(victim, node, [QCOPD, '--socket', `${own}/qcop.sock`]);
  assert.is(loose.code, 1);
  assert.match(loose.stderr, `can be written by other users (mode 0777)`);
  assert.match(loose.stderr, `chmod go-w ${own}`);

  // Doing what the message says (root removes the folder) lets the victim's broker and clients work.
  fs.rmSync(dir, { recursive: true });
  const broker = await userBroker(victim, [], socket);
  const st = fs.statSync(dir);
  assert.is(st.uid, victim.uid);
  assert.is(st.mode & 0o777, 0o700);
  const ok = await runAs(victim, node, [QCOP, 'send', 'secret/pin', 'set(QString)', '"1234"']);
  assert.is(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout), { receivers: 0 });
  await assertHealthy(await sceneAround(broker, socket));
});

test('a symbolic link named like the TCP token file: never written through; in a squatted folder the broker refuses', async () => {
  const attacker = addUser('atk');
  const victim = addUser('vic');
  const dir = `/tmp/qcop-${victim.uid}`;
  const port = await freePort();
  const tokenName = `tcp-${port}.token`;
  const precious = path.join(openDir(), 'precious.txt');
  fs.writeFileSync(precious, 'precious\n', { mode: 0o600 });
  fs.chownSync(precious, victim.uid, victim.gid);
  const elsewhere = path.join(openDir(), 'run');
  fs.mkdirSync(elsewhere, { mode: 0o700 });
  fs.chownSync(elsewhere, victim.uid, victim.gid);

  // The attacker's folder where the victim's token would go, with the link in it.
  assert.is((await runAs(attacker, 'mkdir', ['-m', '0777', dir])).code, 0);
  assert.is((await runAs(attacker, 'ln', ['-s', precious, `${dir}/${tokenName}`])).code, 0);
  const refused = await runAs(victim, node, [QCOPD, '--socket', `${elsewhere}/qcop.sock`, '--tcp', `127.0.0.1:${port}`]);
  assert.is(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, `EACCES: the socket folder ${dir} belongs to uid ${attacker.uid}`, refused.stderr);
  assert.is(fs.readFileSync(precious, 'utf8'), 'precious\n');
  fs.rmSync(dir, { recursive: true });

  // The victim's own folder holding such a link (planted earlier): the link is replaced, not followed.
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chownSync(dir, victim.uid, victim.gid);
  fs.symlinkSync(precious, `${dir}/${tokenName}`);
  fs.lchownSync(`${dir}/${tokenName}`, victim.uid, victim.gid);
  const broker = await userBroker(victim, ['--tcp', `127.0.0.1:${port}`], `${dir}/qcop.sock`);
  assert.is(fs.readFileSync(precious, 'utf8'), 'precious\n', "the victim's file is untouched");
  const st = fs.lstatSync(`${dir}/${tokenName}`);
  assert.ok(st.isFile(), 'the token file is a regular file now');
  assert.is(st.mode & 0o777, 0o600);
  assert.is(st.uid, victim.uid);
  const viaTcp = await runAs(victim, node, [QCOP, 'send', 'local/x', 'm()', '--url', `tcp://127.0.0.1:${port}`]);
  assert.is(viaTcp.code, 0, viaTcp.stderr);
  await assertHealthy(await sceneAround(broker, `${dir}/qcop.sock`));
});

test('--group NAME gives the socket folder (0750) and the socket (0660) to that group: a member connects, another user cannot', async () => {
  const group = addGroup('grp');
  const member = addUser('mem', group.name);
  const outsider = addUser('out');
  const socket = path.join(openDir(), 'run', 'qcop.sock');
  removeLater(path.dirname(socket));
  const broker = await spawnBroker(['--group', group.name, '--log-level', 'error'], socket);
  const dirStat = fs.statSync(path.dirname(socket));
  // The socket answers as soon as it listens; its group and mode are set right after (before READY).
  await waitFor(() => fs.statSync(socket).gid === group.gid, 5000, 'the socket given to the group');
  const sockStat = fs.statSync(socket);
  assert.is(dirStat.gid, group.gid, 'the folder belongs to the group');
  assert.is(dirStat.mode & 0o777, 0o750);
  assert.is(sockStat.gid, group.gid, 'the socket belongs to the group');
  assert.is(sockStat.mode & 0o777, 0o660);

  const ok = await runAs(member, node, [QCOP, 'send', 'grp/x', 'm()', '--socket', socket], {}, [group.gid]);
  assert.is(ok.code, 0, ok.stderr);
  const denied = await runAs(outsider, node, [QCOP, 'send', 'grp/x', 'm()', '--socket', socket]);
  assert.is(denied.code, 1);
  assert.match(denied.stderr, /^ENOBROKER: .*EACCES/);
  await assertHealthy(await sceneAround(broker, socket));
});

test.run();
