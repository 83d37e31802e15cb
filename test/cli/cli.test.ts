// The qcop command as a user runs it: usage text, exit codes 0/1/2, JSON output, the SPEC §4 data forms.
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, Proc, QCOP, cleanup, runCli, spawnBroker, tempDir, waitFor } from '../helpers/procs.js';

const require = createRequire(import.meta.url);
let socket = '';
const env = () => ({ QCOP_SOCKET: socket });

test.before(async () => {
  socket = (await spawnBroker()).socket;
});
test.after(() => cleanup());

test('--help prints usage for qcop and every command, exit 0', async () => {
  const top = await runCli(['--help']);
  assert.is(top.code, 0);
  for (const cmd of ['broker', 'send', 'listen', 'call', 'registered', 'watch', 'stats', 'shm', 'acl', 'record', 'replay', 'introspect']) {
    assert.match(top.stdout, `  ${cmd} `);
    const r = await runCli([cmd, '--help']);
    assert.is(r.code, 0, cmd);
    assert.match(r.stdout, `usage: qcop ${cmd}`);
  }
});

const USAGE_ERRORS: Array<[string, string[]]> = [
  ['unknown command', ['frobnicate']],
  ['unknown flag', ['send', 'a', 'm()', '--bogus']],
  ['missing arguments', ['send', 'a']],
  ['too many arguments', ['registered', 'a', 'b']],
  ['pattern where a channel is needed', ['send', 'demo/*', 'm()']],
  ['invalid channel', ['send', 'a//b', 'm()']],
  ['invalid data', ['send', 'a', 'm()', '{nope']],
  ['bad $bytes', ['send', 'a', 'm()', '{"$bytes":"***"}']],
  ['bad --count', ['listen', 'a', '--count', 'many']],
  ['bad --timeout', ['call', 'a', 'm()', '--timeout', '-1']],
  ['pattern to registered', ['registered', 'x/*']],
  ['unknown flag before the command', ['--bogus', 'stats']],
  ['global flag without a value', ['--socket']],
  ['global flags without a command', ['--socket', '/tmp/x.sock']],
  ['the same flag before and after the command', ['--socket', '/tmp/a.sock', 'stats', '--socket', '/tmp/b.sock']],
  ['a global flag the command does not take', ['--url', 'unix:/tmp/x.sock', 'shm', 'ls']],
];

for (const [what, args] of USAGE_ERRORS) {
  test(`usage error exits 2 with one EINVAL line: ${what}`, async () => {
    const r = await runCli(args, env());
    assert.is(r.code, 2);
    assert.is(r.stdout, '');
    assert.match(r.stderr, /^EINVAL: .+\n$/);
  });
}

test('--socket and --url work before the command too (git/kubectl style), also as --flag=VALUE', async () => {
  const elsewhere = { QCOP_SOCKET: path.join(tempDir(), 'not-here.sock') };
  const listener = new Proc(process.execPath, [QCOP, '--socket', socket, 'listen', 'front/*', '--count', '1'], elsewhere);
  await waitFor(async () => (await runCli([`--url=unix:${socket}`, 'registered', 'front/x'], elsewhere)).code === 0, 5000, 'the listener');
  const sent = await runCli(['--url', `unix:${socket}`, 'send', 'front/x', 'm(int)', '5'], elsewhere);
  assert.is(sent.code, 0, sent.stderr);
  assert.is(sent.stdout, '{"receivers":1}\n');
  assert.is((await listener.exited).code, 0, listener.stderr);
  assert.equal(listener.lines, ['{"channel":"front/x","message":"m(int)","data":5}']);
  const stats = await runCli([`--socket=${socket}`, 'stats'], elsewhere);
  assert.is(stats.code, 0, stats.stderr);
  const taken = await runCli(['--socket', socket, 'broker']);
  assert.is(taken.code, 1);
  assert.match(taken.stderr, /^EADDRINUSE: /);
  const help = await runCli(['--help']);
  assert.match(help.stdout, 'usage: qcop [--socket PATH | --url URL] COMMAND');
  assert.match(help.stdout, /\n  --socket PATH +broker socket path/);
});

test('no broker: exit 1 with ENOBROKER naming the socket', async () => {
  const missing = path.join(tempDir(), 'missing.sock');
  const r = await runCli(['stats', '--socket', missing]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^ENOBROKER: .*missing\.sock/);
});

test('listen prints the message sent by send; registered follows the listener', async () => {
  const listener = new Proc(process.execPath, [QCOP, 'listen', 'demo/*', '--count', '1'], env());
  await waitFor(async () => (await runCli(['registered', 'demo/x'], env())).code === 0, 5000, 'the listener');
  const sent = await runCli(['send', 'demo/x', 'hello(int)', '42'], env());
  assert.is(sent.code, 0);
  assert.is(sent.stdout, '{"receivers":1}\n');
  const { code } = await listener.exited;
  assert.is(code, 0);
  assert.equal(listener.lines, ['{"channel":"demo/x","message":"hello(int)","data":42}']);
  const after = await runCli(['registered', 'demo/x'], env());
  assert.is(after.code, 1);
  assert.is(after.stdout, 'false\n');
});

test('send with no listener prints 0 receivers and exits 0; --require-listener exits 1', async () => {
  const plain = await runCli(['send', 'empty/x', 'm()'], env());
  assert.is(plain.code, 0);
  assert.is(plain.stdout, '{"receivers":0}\n');
  const strict = await runCli(['send', 'empty/x', 'm()', '--require-listener'], env());
  assert.is(strict.code, 1);
  assert.is(strict.stdout, '{"receivers":0}\n');
  assert.match(strict.stderr, /^ENOLISTENER: /);
});

test('data forms survive the trip: $bytes, $bigint, $date, $cbor, no data, --raw', async () => {
  const listener = new Proc(process.execPath, [QCOP, 'listen', 'forms', '--count', '6'], env());
  await waitFor(async () => (await runCli(['registered', 'forms'], env())).code === 0, 5000, 'the listener');
  const inputs = [
    '{"$bytes":"AAEC/w=="}',
    '{"$bigint":"123456789012345678901234567890"}',
    '{"$date":"2026-11-25T12:00:00.000Z"}',
    '{"k":{"$cbor":"uQABZiRieXRlc2FB"}}',
  ];
  for (const data of inputs) assert.is((await runCli(['send', 'forms', 'f()', data], env())).code, 0);
  assert.is((await runCli(['send', 'forms', 'none()'], env())).code, 0);
  assert.is((await runCli(['send', 'forms', 'raw()', '--raw'], env(), Buffer.from([1, 2, 3]))).code, 0);
  await listener.exited;
  const lines = listener.lines.map((l) => JSON.parse(l));
  assert.equal(lines.slice(0, 4).map((l) => JSON.stringify(l.data)), inputs);
  assert.equal(lines[4], { channel: 'forms', message: 'none()' });
  assert.equal(lines[5].data, { $bytes: 'AQID' });
});

test('call: the reply as JSON; ENOLISTENER at once without a replier; the replier\'s code', async () => {
  const none = await runCli(['call', 'nobody/here', 'now()', '--timeout', '30'], env());
  assert.is(none.code, 1);
  assert.match(none.stderr, /^ENOLISTENER: /);
  const replier = new Proc(process.execPath, [path.join(FIXTURES, 'replier.mjs'), socket]);
  await replier.waitJson((v) => v.ready === true, 5000, 'replier');
  const ok = await runCli(['call', 'svc/clock', 'now()', '{"tz":"UTC"}'], env());
  assert.is(ok.code, 0);
  assert.equal(JSON.parse(ok.stdout), { echo: { tz: 'UTC' } });
  const failed = await runCli(['call', 'svc/clock', 'fail()'], env());
  assert.is(failed.code, 1);
  assert.match(failed.stderr, /^EBUSY: /);
  replier.kill('SIGTERM');
});

test('listen --timeout: exit 0 without --count, 1 (ETIMEDOUT) when --count is not reached', async () => {
  const quiet = await runCli(['listen', 'silent/x', '--timeout', '0.2'], env());
  assert.is(quiet.code, 0);
  assert.is(quiet.stdout, '');
  const short = await runCli(['listen', 'silent/x', '--count', '2', '--timeout', '0.2'], env());
  assert.is(short.code, 1);
  assert.match(short.stderr, /^ETIMEDOUT: /);
});

test('watch prints the current state then changes, and exits 0 on SIGTERM', async () => {
  const holder = new Proc(process.execPath, [QCOP, 'listen', 'wx/held'], env());
  await waitFor(async () => (await runCli(['registered', 'wx/held'], env())).code === 0, 5000, 'holder');
  const watcher = new Proc(process.execPath, [QCOP, 'watch', 'wx/*'], env());
  await waitFor(() => watcher.lines.length >= 1, 5000, 'initial event');
  holder.kill('SIGTERM');
  assert.is((await holder.exited).code, 0, 'listen exits 0 on SIGTERM');
  await waitFor(() => watcher.lines.length >= 2, 5000, 'unregistered event');
  watcher.kill('SIGTERM');
  assert.is((await watcher.exited).code, 0);
  assert.equal(watcher.lines.map((l) => JSON.parse(l)), [
    { type: 'registered', channel: 'wx/held', initial: true },
    { type: 'unregistered', channel: 'wx/held' },
  ]);
});

test('stats prints one JSON object with clients, channels, routed, dropped, queues', async () => {
  const r = await runCli(['stats'], env());
  assert.is(r.code, 0);
  const s = JSON.parse(r.stdout);
  for (const key of ['clients', 'channels', 'routed', 'dropped', 'queues']) assert.ok(key in s, key);
  assert.ok(s.clients >= 1);
});

test('broker: a bad config file is a usage error; a live socket is refused with exit 1', async () => {
  const dir = tempDir();
  const cfg = path.join(dir, 'c.json');
  require('node:fs').writeFileSync(cfg, '{"maxQueueBytes": "lots"}');
  const bad = await runCli(['broker', '--socket', path.join(dir, 's.sock'), '--config', cfg]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^EINVAL: .*maxQueueBytes/);
  const taken = await runCli(['broker', '--socket', socket]);
  assert.is(taken.code, 1);
  assert.match(taken.stderr, /^EADDRINUSE: /);
});

test('shm ls prints a JSON array of segments; shm gc prints the removed keys; a bad verb is exit 2', async () => {
  const ls = await runCli(['shm', 'ls']);
  assert.is(ls.code, 0, ls.stderr);
  assert.ok(Array.isArray(JSON.parse(ls.stdout)));
  const gc = await runCli(['shm', 'gc']);
  assert.is(gc.code, 0, gc.stderr);
  assert.ok(Array.isArray(JSON.parse(gc.stdout).removed));
  const bad = await runCli(['shm', 'rm']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^EINVAL: /);
});

test.run();
