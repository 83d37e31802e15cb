// The access policy core (SPEC §9, docs/ACL.md): schema and limits, name resolution, decisions, cache, quotas, and `qcop acl check`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Accounts } from '../../../runtime/broker/acl/accounts.js';
import { ACL_LIMITS, loadPolicy, type Identity, type Policy, type PolicyOptions } from '../../../runtime/broker/acl/policy.js';
import { aclCommand } from '../../../runtime/cli/acl-command.js';
import { runCommand } from '../../../runtime/cli/run.js';
import { QcopError } from '../../../runtime/protocol/errors.js';
import { ROOT as REPO } from '../../helpers/procs.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qcop-acl-'));
const PASSWD = path.join(root, 'passwd');
const GROUP = path.join(root, 'group');
fs.writeFileSync(PASSWD, [
  '# test accounts',
  'root:x:0:0:root:/root:/bin/sh',
  'qcop:x:990:990::/run/qcop:/usr/sbin/nologin',
  'camera:x:1001:1001::/:/bin/false',
  'ui:x:1002:1002::/:/bin/false',
  'app1:x:2001:3000::/:/bin/false',
  'app2:x:2002:2002::/:/bin/false',
  '',
].join('\n'));
fs.writeFileSync(GROUP, ['root:x:0:', 'qcop:x:990:', 'camera:x:1001:', 'ui:x:1002:', 'apps:x:3000:app2', 'video:x:44:camera,ui', 'app2:x:2002:', ''].join('\n'));
const FILES = { passwd: PASSWD, group: GROUP };

const ROOT: Identity = { uid: 0, gid: 0, groups: [] };
const QCOP: Identity = { uid: 990, gid: 990, groups: [] };
const CAMERA: Identity = { uid: 1001, gid: 1001, groups: [1001, 44] };
const UI: Identity = { uid: 1002, gid: 1002, groups: [1002, 44] };
const APP1: Identity = { uid: 2001, gid: 3000, groups: [] }; // apps as primary group
const APP2: Identity = { uid: 2002, gid: 2002, groups: [2002, 3000] }; // apps as supplementary group
const STRANGER: Identity = { uid: 4242, gid: 4242, groups: [] };

let dirs = 0;
/** A fresh policy folder holding `files` (name → JSON value, or raw text). */
function folder(files: Record<string, unknown>): string {
  const dir = path.join(root, `acl${++dirs}`);
  fs.mkdirSync(dir, { mode: 0o755 });
  for (const [name, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), typeof v === 'string' ? v : JSON.stringify(v));
  return dir;
}

function load(files: Record<string, unknown>, options: PolicyOptions = {}): Policy {
  return loadPolicy(folder(files), { ...FILES, brokerUid: 990, ...options });
}

/** Asserts that loading `files` fails with `code`, the message naming `file` and every part of `parts`. */
function refused(files: Record<string, unknown>, file: string, parts: string[], code = 'EINVAL'): void {
  try {
    load(files);
  } catch (e) {
    assert.ok(e instanceof QcopError, String(e));
    assert.is(e.code, code, e.message);
    assert.ok(e.message.includes(file), `${e.message} names ${file}`);
    for (const p of parts) assert.ok(e.message.includes(p), `${e.message} includes ${p}`);
    return;
  }
  assert.unreachable(`loading ${JSON.stringify(files).slice(0, 200)} was accepted`);
}

// --- schema -------------------------------------------------------------------------------------

const SCHEMA: Array<[string, unknown, string[]]> = [
  ['text that is not JSON', '{"rules": [', ['at $:', 'not valid JSON']],
  ['a top level that is an array', [], ['at $:', 'JSON object']],
  ['an unknown top-level key', { rules: [], rulez: [] }, ['$.rulez', 'unknown key']],
  ['a comment that is not a string', { comment: 5 }, ['$.comment']],
  ['rules that are not an array', { rules: {} }, ['$.rules', 'array']],
  ['a rule that is not an object', { rules: ['ui'] }, ['$.rules[0]', 'JSON object']],
  ['a rule naming user and group', { rules: [{ user: 'ui', group: 'apps', send: ['a'] }] }, ['$.rules[0]', 'not both']],
  ['a rule naming nobody', { rules: [{ send: ['a'] }] }, ['$.rules[0]', '"user" or a "group"']],
  ['an unknown rule key', { rules: [{ user: 'ui', sned: ['a'] }] }, ['$.rules[0].sned', 'unknown key']],
  ['an odd unknown key', { rules: [{ user: 'ui', 'a b': 1 }] }, ['$.rules[0]["a b"]']],
  ['an action that is not a list', { rules: [{ user: 'ui', listen: 'a/*' }] }, ['$.rules[0].listen', 'array']],
  ['a channel with an empty segment', { rules: [{ user: 'ui' }, { user: 'ui', send: ['a', 'b', 'a//b'] }] }, ['$.rules[1].send[2]', 'empty segment']],
  ['a channel that is not a string', { rules: [{ user: 'ui', watch: [7] }] }, ['$.rules[0].watch[0]']],
  ['a pattern with a backwards set', { rules: [{ user: 'ui', monitor: ['a/[z-a]*'] }] }, ['$.rules[0].monitor[0]', 'backwards']],
  ['a channel longer than 255 bytes', { rules: [{ user: 'ui', send: ['x'.repeat(256)] }] }, ['$.rules[0].send[0]', '256 bytes']],
  ['an unknown user name', { rules: [{ user: 'mallory', send: ['a'] }] }, ['$.rules[0].user', "'mallory'", PASSWD]],
  ['an unknown group name', { rules: [{ group: 'wheel', send: ['a'] }] }, ['$.rules[0].group', "'wheel'", GROUP]],
  ['a negative uid', { rules: [{ user: -1 }] }, ['$.rules[0].user']],
  ['an empty user', { rules: [{ user: '' }] }, ['$.rules[0].user']],
  ['group "*"', { rules: [{ group: '*', send: ['a'] }] }, ['$.rules[0].group', '"user": "*"']],
  ['a quota on a group rule', { rules: [{ group: 'apps', quota: { listeners: 4 } }] }, ['$.rules[0].quota', 'per user']],
  ['a quota for every user', { rules: [{ user: '*', quota: { listeners: 4 } }] }, ['$.rules[0].quota', 'defaults']],
  ['an unknown quota', { rules: [{ user: 'ui', quota: { sockets: 4 } }] }, ['$.rules[0].quota.sockets', 'unknown quota']],
  ['a zero quota', { rules: [{ user: 'ui', quota: { watches: 0 } }] }, ['$.rules[0].quota.watches', 'positive']],
  ['a fractional quota', { rules: [{ user: 'ui', quota: { queuedBytes: 1.5 } }] }, ['$.rules[0].quota.queuedBytes']],
  ['defaults that are not an object', { defaults: 3 }, ['$.defaults']],
  ['an unknown defaults key', { defaults: { quotas: {} } }, ['$.defaults.quotas']],
  ['a bad default quota', { defaults: { quota: { connections: '8' } } }, ['$.defaults.quota.connections']],
];

for (const [what, value, parts] of SCHEMA) {
  test(`schema: ${what} is refused, naming the file and the JSON path`, () => refused({ '10-x.json': value }, '10-x.json', parts));
}

test('schema: the first bad file in name order is named, and one bad file refuses the whole load', () => {
  const good = { rules: [{ user: 'ui', send: ['a'] }] };
  refused({ '00-good.json': good, '20-bad.json': { rules: 1 }, '10-bad.json': { rules: [{ user: 'nope' }] } }, '10-bad.json', ['$.rules[0].user']);
});

test('schema: a quota set twice for one user, or a default set twice, is refused naming both places', () => {
  refused({ 'a.json': { rules: [{ user: 'ui', quota: { listeners: 2 } }] }, 'b.json': { rules: [{ user: '1002', quota: { listeners: 3 } }] } }, 'b.json', ['$.rules[0].quota.listeners', 'a.json:0']);
  refused({ 'a.json': { defaults: { quota: { watches: 2 } } }, 'b.json': { defaults: { quota: { watches: 3 } } } }, 'b.json', ['$.defaults.quota.watches', 'a.json']);
});

test('schema: comments, empty files and rules without actions are accepted', () => {
  const p = load({ '00.json': {}, '10.json': { comment: 'ui', rules: [{ user: 'ui', comment: 'nothing yet' }], defaults: { comment: 'd' } } });
  assert.equal(p.files, ['00.json', '10.json']);
  assert.is(p.rules.length, 1);
});

// --- limits and the folder ----------------------------------------------------------------------

test(`limits: more than ${ACL_LIMITS.files} policy files are refused; other names and dot files are not counted`, () => {
  const files: Record<string, unknown> = { 'README': 'x', '.hidden.json': 'not json', 'x.json.bak': 'x' };
  for (let i = 0; i < ACL_LIMITS.files; i++) files[`${String(i).padStart(3, '0')}.json`] = {};
  const dir = folder(files);
  assert.is(loadPolicy(dir, FILES).files.length, ACL_LIMITS.files);
  fs.writeFileSync(path.join(dir, 'zzz.json'), '{}');
  assert.throws(() => loadPolicy(dir, FILES), (e: QcopError) => e.code === 'EINVAL' && e.message.includes(dir) && e.message.includes(`${ACL_LIMITS.files}`));
});

test(`limits: a file over ${ACL_LIMITS.fileBytes} bytes is refused before it is read`, () => {
  refused({ 'big.json': `{"rules":[]}${' '.repeat(ACL_LIMITS.fileBytes)}` }, 'big.json', ['larger than']);
});

test(`limits: more than ${ACL_LIMITS.rules} rules in all files, or ${ACL_LIMITS.entries} channel entries, are refused`, () => {
  const rules = (n: number) => ({ rules: Array.from({ length: n }, () => ({ user: 'ui' })) });
  refused({ 'a.json': rules(4000), 'b.json': rules(97) }, 'b.json', ['$.rules', `${ACL_LIMITS.rules}`]);
  assert.is(load({ 'a.json': rules(4000), 'b.json': rules(96) }).rules.length, ACL_LIMITS.rules);
  const many = (n: number) => ({ rules: [{ user: 'ui', send: Array.from({ length: n }, (_, i) => `c/${i}`) }] });
  refused({ 'a.json': many(16000), 'b.json': many(385) }, 'b.json', ['$.rules[0].send', `${ACL_LIMITS.entries}`]);
});

test('folder: a missing folder, a folder named *.json, or a file anyone may write is refused', () => {
  assert.throws(() => loadPolicy(path.join(root, 'none'), FILES), (e: QcopError) => e.code === 'EINVAL' && e.message.includes('does not exist'));
  const dir = folder({});
  fs.mkdirSync(path.join(dir, 'sub.json'));
  assert.throws(() => loadPolicy(dir, FILES), (e: QcopError) => e.code === 'EINVAL' && e.message.includes('sub.json') && e.message.includes('regular file'));
  const open = folder({ 'w.json': {} });
  fs.chmodSync(path.join(open, 'w.json'), 0o666);
  assert.throws(() => loadPolicy(open, FILES), (e: QcopError) => e.code === 'EACCES' && e.message.includes('w.json'));
});

// --- names --------------------------------------------------------------------------------------

test('names: users and groups resolve by name, by decimal text and by number; identities take groups from the group file', () => {
  const p = load({ 'a.json': { rules: [{ user: 'ui', send: ['a'] }, { user: '1001', send: ['b'] }, { user: 2001, send: ['c'] }, { group: 'video', send: ['d'] }, { group: 3000, send: ['e'] }] } });
  assert.equal(p.rules.map((r) => r.subject), [
    { kind: 'user', uid: 1002 }, { kind: 'user', uid: 1001 }, { kind: 'user', uid: 2001 }, { kind: 'group', gid: 44 }, { kind: 'group', gid: 3000 },
  ]);
  const accounts = new Accounts(FILES);
  assert.equal(accounts.identityOf('app2'), { name: 'app2', uid: 2002, gid: 2002, groups: [2002, 3000] });
  assert.equal(accounts.identityOf('1002'), { name: 'ui', uid: 1002, gid: 1002, groups: [44, 1002] });
  assert.throws(() => accounts.identityOf('mallory'), (e: QcopError) => e.code === 'EINVAL');
});

// --- decisions ----------------------------------------------------------------------------------

const BOARD = {
  '10-system.json': { rules: [
    { user: 'camera', send: ['cam/*'], listen: ['QPE/Camera'] },
    { user: 'ui', send: ['QPE/System'], listen: ['ui/*', 'QPE/Camera'], watch: ['cam/*'], monitor: ['ui/*'] },
  ] },
  '20-apps.json': { rules: [
    { group: 'apps', send: ['apps/*', 'QPE/Application/x'], listen: ['cam/front', 'cam/rear/*'] },
    { user: '*', listen: ['public/*'], send: ['a/b', 'a/?', 'a/[xy]*'] },
  ] },
};

test('decisions: each action is granted by its own list only, with the first granting rule as FILE:INDEX', () => {
  const p = load(BOARD);
  assert.equal(p.allowed(UI, 'send', 'QPE/System'), { allowed: true, rule: '10-system.json:1' });
  assert.equal(p.allowed(UI, 'listen', 'ui/menu'), { allowed: true, rule: '10-system.json:1' });
  assert.equal(p.allowed(UI, 'watch', 'cam/front'), { allowed: true, rule: '10-system.json:1' });
  assert.equal(p.allowed(UI, 'monitor', 'ui/menu'), { allowed: true, rule: '10-system.json:1' });
  assert.equal(p.allowed(UI, 'send', 'ui/menu'), { allowed: false, rule: null });
  assert.equal(p.allowed(UI, 'listen', 'QPE/System'), { allowed: false, rule: null });
  assert.equal(p.allowed(UI, 'monitor', 'cam/front'), { allowed: false, rule: null });
  assert.equal(p.allowed(CAMERA, 'send', 'cam/front/frame'), { allowed: true, rule: '10-system.json:0' });
  assert.equal(p.allowed(CAMERA, 'send', 'QPE/System'), { allowed: false, rule: null });
  assert.equal(p.allowed(CAMERA, 'listen', 'public/news'), { allowed: true, rule: '20-apps.json:1' });
});

test('decisions: a group rule grants by primary gid and by supplementary group, and not to others', () => {
  const p = load(BOARD);
  assert.equal(p.allowed(APP1, 'send', 'apps/x/ping'), { allowed: true, rule: '20-apps.json:0' });
  assert.equal(p.allowed(APP2, 'send', 'apps/x/ping'), { allowed: true, rule: '20-apps.json:0' });
  assert.is(p.allowed(UI, 'send', 'apps/x/ping').allowed, false);
  assert.is(p.allowed(APP1, 'send', 'QPE/System').allowed, false);
});

test('decisions: "*" names every user; root and the broker\'s user may do everything (rule null)', () => {
  const p = load(BOARD);
  assert.equal(p.allowed(STRANGER, 'listen', 'public/x'), { allowed: true, rule: '20-apps.json:1' });
  assert.is(p.allowed(STRANGER, 'listen', 'ui/menu').allowed, false);
  for (const who of [ROOT, QCOP]) {
    assert.equal(p.allowed(who, 'monitor', 'anything/at/all'), { allowed: true, rule: null });
    assert.equal(p.quotaFor(who).connections, Infinity);
  }
  assert.is(load(BOARD, { brokerUid: 1001 }).allowed(QCOP, 'send', 'x').allowed, false);
  assert.is(load(BOARD, { brokerUid: 1001 }).allowed(CAMERA, 'send', 'x').allowed, true);
  assert.is(load({}).allowed(STRANGER, 'listen', 'public/x').allowed, false); // an empty folder grants nothing
});

test('decisions: exact names compare exactly (? and [ without * are literal); patterns go through the matcher', () => {
  const p = load(BOARD);
  const send = (c: string) => p.allowed(STRANGER, 'send', c).allowed;
  assert.equal([send('a/b'), send('a/bc'), send('a/b/c')], [true, false, false]);
  assert.equal([send('a/?'), send('a/z')], [true, false]);
  assert.equal([send('a/x'), send('a/y1/2'), send('a/z1')], [true, true, false]);
});

test('decisions: a pattern asked for is granted only when a rule covers all of it', () => {
  const p = load({ 'a.json': { rules: [{ user: 'ui', listen: ['cam/*', 'mic/?', 'spk/a', 'x*y*'] }] } });
  assert.is(p.allowed(UI, 'listen', 'cam/*').allowed, true);
  assert.is(p.allowed(UI, 'listen', 'cam/front/*').allowed, true);
  assert.is(p.allowed(UI, 'listen', 'mic/*').allowed, false); // mic/? matches the text mic/* but not mic/abc
  assert.is(p.allowed(UI, 'listen', 'spk/*').allowed, false);
  assert.is(p.allowed(UI, 'listen', 'x*y*').allowed, true); // the same pattern
  assert.is(p.allowed(UI, 'listen', 'xa*y*').allowed, false); // covered, but not by a PREFIX* rule: conservative no
  assert.is(p.allowed(UI, 'listen', 'a//b').allowed, false); // an invalid name is denied
});

test('listen filtering: listenable per message, mayListenAny for a pattern listener (conservative)', () => {
  const p = load(BOARD);
  assert.equal([p.listenable(APP1, 'cam/front'), p.listenable(APP1, 'cam/rear/2'), p.listenable(APP1, 'cam/side')], [true, true, false]);
  assert.is(p.mayListenAny(APP1, 'cam/*'), true); // the exact cam/front matches it
  assert.is(p.mayListenAny(APP1, 'cam/r*'), true); // prefixes agree with cam/rear/*
  assert.is(p.mayListenAny(APP1, 'cam/s*'), false);
  assert.is(p.mayListenAny(APP1, 'mic/*'), false);
  assert.is(p.mayListenAny(APP1, '*'), true);
  assert.is(p.mayListenAny(APP1, 'cam/front'), true); // a concrete name: allowed()
  assert.is(p.mayListenAny(UI, 'cam/*'), false);
  assert.is(p.mayListenAny(ROOT, 'cam/*'), true);
  const q = load({ 'a.json': { rules: [{ user: 'ui', listen: ['a*x'] }] } });
  assert.is(q.mayListenAny(UI, 'a*y'), true); // no channel matches both; the test only compares prefixes
  assert.is(q.mayAny(UI, 'watch', 'a*'), false);
});

// --- cache and reload ---------------------------------------------------------------------------

test('cache: a repeated question gets the same answer object; the cache is bounded, oldest out', () => {
  const p = load(BOARD, { cacheLimit: 8 });
  const first = p.allowed(UI, 'send', 'QPE/System');
  assert.is(p.allowed({ ...UI, groups: [44, 1002, 44] }, 'send', 'QPE/System'), first); // same uid, gid and groups
  assert.is(p.allowed(UI, 'send', 'QPE/System'), first);
  for (let i = 0; i < 100; i++) assert.is(p.allowed(STRANGER, 'listen', `public/${i}`).allowed, true);
  assert.is(p.cacheSize, 8);
  assert.equal(p.allowed(UI, 'send', 'QPE/System'), first); // evicted, decided again alike
  assert.is(load(BOARD, { cacheLimit: 0 }).cacheSize, 0);
});

test('reload: a new load answers by the new files; the old policy object keeps its answers', () => {
  const dir = folder(BOARD);
  const old = loadPolicy(dir, { ...FILES, brokerUid: 990 });
  assert.is(old.allowed(UI, 'send', 'QPE/System').allowed, true);
  fs.writeFileSync(path.join(dir, '10-system.json'), JSON.stringify({ rules: [{ user: 'ui', send: ['ui/*'] }] }));
  const next = loadPolicy(dir, { ...FILES, brokerUid: 990 });
  assert.is(next.allowed(UI, 'send', 'QPE/System').allowed, false);
  assert.is(old.allowed(UI, 'send', 'QPE/System').allowed, true);
  fs.writeFileSync(path.join(dir, '10-system.json'), '{');
  assert.throws(() => loadPolicy(dir, { ...FILES, brokerUid: 990 }), (e: QcopError) => e.code === 'EINVAL' && e.message.includes('10-system.json'));
});

// --- quotas -------------------------------------------------------------------------------------

test('quotas: the user override per key, else the defaults, else Infinity; root and the broker user skip the defaults', () => {
  const p = load({
    '00-defaults.json': { defaults: { quota: { connections: 8, listeners: 64, queuedBytes: 1048576 } } },
    '10-ui.json': { rules: [{ user: 'ui', quota: { listeners: 512, shmBytes: 4194304 } }, { user: 'root', quota: { connections: 100 } }] },
  });
  assert.equal({ ...p.quotaFor(UI) }, { connections: 8, connectionsPerSecond: Infinity, listeners: 512, watches: Infinity, callsInFlight: Infinity, queuedBytes: 1048576, shmBytes: 4194304 });
  assert.equal(p.quotaFor(APP1).listeners, 64);
  assert.equal(p.quotaFor({ ...APP1, groups: [1002] }).listeners, 64); // quotas go by uid, never by group
  assert.equal([p.quotaFor(ROOT).connections, p.quotaFor(ROOT).listeners], [100, Infinity]);
  assert.equal(p.quotaFor(QCOP).listeners, Infinity);
  assert.is(p.quotaFor(UI), p.quotaFor(UI));
  assert.equal(Object.values(load({}).quotaFor(UI)), Array(7).fill(Infinity));
});

// --- qcop acl check -----------------------------------------------------------------------------

const acl = aclCommand(FILES);

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = process.stdout.write;
  const stderr = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    const code = await runCommand(acl, argv);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
  }
}

test('acl check: prints {allowed, rule} and exits 0 when allowed, 1 when not', async () => {
  const dir = folder(BOARD);
  assert.equal(await cli(['check', 'ui', 'send', 'QPE/System', '--acl-dir', dir]), { code: 0, out: '{"allowed":true,"rule":"10-system.json:1"}\n', err: '' });
  assert.equal(await cli(['check', 'ui', 'listen', 'cam/front', '--acl-dir', dir]), { code: 1, out: '{"allowed":false,"rule":null}\n', err: '' });
  assert.equal((await cli(['check', 'app2', 'send', 'apps/2/x', '--acl-dir', dir])).out, '{"allowed":true,"rule":"20-apps.json:0"}\n');
  assert.equal((await cli(['check', '2001', 'listen', 'cam/rear/*', '--acl-dir', dir])).code, 0);
});

test('acl check: root and the broker user (qcop by default, or --broker-user) are allowed with rule null', async () => {
  const dir = folder(BOARD);
  const yes = { code: 0, out: '{"allowed":true,"rule":null}\n', err: '' };
  assert.equal(await cli(['check', 'root', 'monitor', 'x', '--acl-dir', dir]), yes);
  assert.equal(await cli(['check', 'qcop', 'send', 'x', '--acl-dir', dir]), yes);
  assert.equal(await cli(['check', 'camera', 'send', 'x', '--acl-dir', dir, '--broker-user', 'camera']), yes);
  assert.is((await cli(['check', 'qcop', 'send', 'x', '--acl-dir', dir, '--broker-user', 'camera'])).code, 1);
});

test('acl check: $QCOP_ACL_DIR is the folder when --acl-dir is not given', async () => {
  const saved = process.env.QCOP_ACL_DIR;
  process.env.QCOP_ACL_DIR = folder(BOARD);
  try {
    assert.is((await cli(['check', 'ui', 'send', 'QPE/System'])).code, 0);
  } finally {
    if (saved === undefined) delete process.env.QCOP_ACL_DIR;
    else process.env.QCOP_ACL_DIR = saved;
  }
});

test('acl check: usage errors exit 2 with EINVAL on stderr and nothing on stdout', async () => {
  const dir = folder(BOARD);
  const bad = folder({ '10-x.json': { rules: [{ user: 'ui', send: ['a//b'] }] } });
  const cases: Array<[string[], string]> = [
    [['check', 'ui', 'publish', 'x', '--acl-dir', dir], 'publish'],
    [['check', 'mallory', 'send', 'x', '--acl-dir', dir], 'mallory'],
    [['check', 'ui', 'send', 'a//b', '--acl-dir', dir], 'empty segment'],
    [['check', 'ui', 'send', 'a/*', '--acl-dir', dir], 'pattern'],
    [['check', 'ui', 'send', 'x', '--acl-dir', bad], '$.rules[0].send[0]'],
    [['check', 'ui', 'send', 'x', '--acl-dir', path.join(root, 'none')], 'does not exist'],
    [['lint', 'ui', 'send', 'x', '--acl-dir', dir], 'lint'],
    [['check', 'ui', 'send'], 'missing arguments'],
  ];
  for (const [argv, says] of cases) {
    const r = await cli(argv);
    assert.is(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.is(r.out, '');
    assert.ok(r.err.startsWith('EINVAL: ') && r.err.includes(says), r.err);
  }
});

// --- docs/ACL.md's example --------------------------------------------------------------------

test('docs/ACL.md: the example board policy loads and answers as its table says', async () => {
  const text = fs.readFileSync(path.join(REPO, 'docs/ACL.md'), 'utf8');
  const files: Record<string, string> = {};
  for (const m of text.matchAll(/`\/etc\/qcop\/acl\.d\/([\w.-]+)`:\n\n```json\n([\s\S]*?)```/g)) files[m[1]!] = m[2]!;
  assert.equal(Object.keys(files), ['10-system.json', '20-ui.json', '30-apps.json']);
  const dir = folder(files);
  fs.appendFileSync(PASSWD, 'weather:x:2003:2003::/:/bin/false\n');
  fs.appendFileSync(GROUP, 'weather:x:2003:\n');
  fs.writeFileSync(GROUP, fs.readFileSync(GROUP, 'utf8').replace('apps:x:3000:app2', 'apps:x:3000:app2,weather'));
  const expect: Array<[string, string]> = [
    ['ui send QPE/System', '{"allowed":true,"rule":"20-ui.json:0"}'],
    ['weather send QPE/System', '{"allowed":false,"rule":null}'],
    ['camera send QPE/System', '{"allowed":false,"rule":null}'],
    ['root listen QPE/System', '{"allowed":true,"rule":null}'],
    ['qcop monitor cam/raw/0', '{"allowed":true,"rule":null}'],
    ['camera send cam/preview/0', '{"allowed":true,"rule":"10-system.json:0"}'],
    ['weather send QPE/Camera', '{"allowed":true,"rule":"30-apps.json:0"}'],
    ['weather listen cam/preview/0', '{"allowed":true,"rule":"30-apps.json:0"}'],
    ['weather listen cam/raw/0', '{"allowed":false,"rule":null}'],
    ['weather listen cam/*', '{"allowed":false,"rule":null}'],
    ['ui listen cam/*', '{"allowed":true,"rule":"20-ui.json:0"}'],
    ['weather listen QPE/Broadcast/lowBattery', '{"allowed":true,"rule":"10-system.json:1"}'],
    ['weather watch QPE/Application/ui', '{"allowed":true,"rule":"30-apps.json:0"}'],
    ['weather send QPE/Application/ui', '{"allowed":false,"rule":null}'],
  ];
  for (const [q, out] of expect) {
    const r = await cli(['check', ...q.split(' '), '--acl-dir', dir]);
    assert.is(r.out, `${out}\n`, q);
    assert.is(r.code, out.includes('true') ? 0 : 1, q);
    const rule = (JSON.parse(out) as { rule: string | null }).rule;
    if (rule !== null) assert.ok(text.includes(rule), `the table names ${rule}`);
  }
  const p = loadPolicy(dir, { ...FILES, brokerUid: 990 });
  const weather = new Accounts(FILES).identityOf('weather');
  assert.is(p.mayListenAny(weather, 'cam/*'), true);
  assert.equal([p.listenable(weather, 'cam/preview/1'), p.listenable(weather, 'cam/raw/1')], [true, false]);
  assert.equal([p.quotaFor(weather).listeners, p.quotaFor(CAMERA).shmBytes, p.quotaFor(CAMERA).connections, p.quotaFor(UI).callsInFlight], [64, 67108864, 8, 16]);
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));

test.run();
