#!/usr/bin/env node
// Owns: `npm run test:pack`: `npm pack`, install the tarball into an empty project, and check the CLI, the ESM import, the types and the shipped native binary, on this Node and on Node 18; prints `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO } from '../../targets/build/bundle.mjs';
import { cleanup, expect, run, start, Tally, tempDir, waitForSocket } from '../qemu/harness.mjs';

const tally = new Tally();
const T = 120000;

// An ESM program that uses the package the way a user would: connect, listen, send, and a
// shared segment whose mapping must come from the shipped prebuilt binary.
const PROGRAM = `import { connect, SharedMemory } from 'qcop';
import { readFileSync } from 'node:fs';
const out = { connect: typeof connect, SharedMemory: typeof SharedMemory, node: process.version };
const socket = process.argv[2];
if (socket) {
  const c = await connect({ socket, name: 'pack-test' });
  const got = new Promise((resolve) => { const l = c.listen('pack/*', (m) => resolve(m.data)); l.ready.then(() => c.send('pack/x', 'v(int)', 7)); });
  out.received = await got;
  await c.close();
}
const seg = await SharedMemory.create('pack/' + process.pid, 4096);
seg.buffer[0] = 42;
out.shm = seg.buffer[0];
out.native = readFileSync('/proc/self/maps', 'utf8').split('\\n').find((l) => l.includes('qcop_native.node'))?.split(/\\s+/).pop();
seg.detach();
console.log(JSON.stringify(out));
`;

const TYPED = `import { connect, SharedMemory, type Client } from 'qcop';
async function main(): Promise<void> {
  const client: Client = await connect({ socket: '/tmp/x.sock' });
  const ok: boolean = client.send('a/b', 'm()', { n: 1 });
  const seg: SharedMemory = await SharedMemory.create('a/b', 4096);
  const r: { recovered: boolean } = await seg.lock({ timeoutMs: 10 });
  seg.unlock();
  seg.detach();
  void ok; void r;
  await client.close();
}
void main;
`;

function npm(args, cwd) {
  // npm runs with this Node: npm 11 does not support Node 18.
  return spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: 10 * 60000, env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' } });
}

async function checksWith(label, nodeBin, project, sock) {
  await tally.check(`${label}: npx qcop --help exits 0`, async () => {
    // This Node first on PATH: npx and the package's `#!/usr/bin/env node` bin both run on it.
    const env = { PATH: `${dirname(nodeBin)}:${process.env.PATH}` };
    const r = await run('npx', ['--no-install', 'qcop', '--help'], { timeoutMs: T, cwd: project, env });
    expect(r.code === 0 && /usage: qcop/.test(r.stdout), `exit ${r.code}: ${r.stderr.slice(0, 400)}`);
  });
  await tally.check(`${label}: import { connect, SharedMemory } from 'qcop' connects, sends, maps shared memory`, async () => {
    const r = await run(nodeBin, [join(project, 'app.mjs'), sock], { timeoutMs: T, cwd: project });
    expect(r.code === 0, `exit ${r.code}: ${r.stderr.slice(0, 600)}`);
    const v = JSON.parse(r.stdout.trim().split('\n').pop());
    expect(v.connect === 'function' && v.SharedMemory === 'function', `exports ${r.stdout}`);
    expect(v.received === 7, `received ${v.received}`);
    expect(v.shm === 42, `shared memory ${v.shm}`);
    const shipped = join(project, 'node_modules/qcop/prebuilds', `linux-${process.arch}`, 'qcop_native.node');
    expect(v.native === shipped, `native part mapped from ${v.native}, want the shipped ${shipped}`);
    return `${v.node}, native from node_modules/qcop/prebuilds`;
  });
}

// serialport and dbus-next are optional peer dependencies (docs/DECISIONS.md): a library install
// leaves them out, and a carrier configured without its package names it and the install command.
const SERIAL_URL_PROGRAM = `import { connect } from 'qcop';
try { await connect({ url: 'serial:///dev/qcop-pack-none', reconnect: false }); console.log('connected?'); }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
`;

async function optionalCarrierChecks(project, tmp) {
  const peers = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).peerDependencies;
  // The major (0.minor below 1.0) of the peer range, as the error's install command names it.
  const install = (pkg) => `npm install ${pkg}@${/^\^?(0\.\d+|\d+)/.exec(peers[pkg])[1]}`;
  await tally.check('a library install brings neither serialport nor dbus-next nor mqtt', async () => {
    for (const pkg of ['serialport', '@serialport', 'dbus-next', 'mqtt']) expect(!existsSync(join(project, 'node_modules', pkg)), `node_modules/${pkg} was installed`);
  });
  const configs = {
    serial: ['serialport', { serial: [{ device: '/dev/qcop-pack-none', export: ['a/*'] }] }],
    dbus: ['dbus-next', { dbus: { bus: `unix:path=${join(tmp, 'no-bus')}`, export: ['a/*'] } }],
    mqtt: ['mqtt', { mqtt: { url: 'mqtt://127.0.0.1:9', export: ['a/*'] } }],
  };
  for (const [carrier, [pkg, config]] of Object.entries(configs)) {
    await tally.check(`qcopd with the ${carrier} carrier but no ${pkg}: exit 1 before taking the socket, naming ${pkg} and \`${install(pkg)}\``, async () => {
      const file = join(tmp, `${carrier}.json`);
      const sock = join(tmp, `${carrier}.sock`);
      writeFileSync(file, JSON.stringify(config));
      const r = await run(process.execPath, [join(project, 'node_modules/qcop/bin/qcopd.js'), '--socket', sock, '--config', file], { timeoutMs: T, cwd: project });
      expect(r.code === 1, `exit ${r.code}: ${r.stderr.slice(0, 400)}`);
      expect(r.stderr.startsWith(`ENOENT: the ${carrier} carrier needs the npm package ${pkg}, which is not installed: ${install(pkg)}\n`), `stderr: ${r.stderr.slice(0, 400)}`);
      expect(!existsSync(sock), 'the broker took its socket first');
    });
  }
  await tally.check('connect({ url: \'serial://...\' }) without serialport rejects with ENOENT naming it', async () => {
    writeFileSync(join(project, 'serial-url.mjs'), SERIAL_URL_PROGRAM);
    const r = await run(process.execPath, [join(project, 'serial-url.mjs')], { timeoutMs: T, cwd: project });
    const v = JSON.parse(r.stdout.trim().split('\n').pop() || 'null');
    expect(v?.code === 'ENOENT' && v.message.includes(install('serialport')), `exit ${r.code}: ${r.stdout} ${r.stderr.slice(0, 400)}`);
  });
}

async function main() {
  const tmp = tempDir('qcop-pack-');
  const t0 = Date.now();
  const packed = npm(['pack', '--json', '--pack-destination', tmp], REPO);
  let tarball;
  const ok = await tally.check('npm pack', async () => {
    expect(packed.status === 0, `npm pack failed: ${(packed.stderr || '').trim().split('\n').slice(-10).join('\n')}`);
    const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0];
    tarball = join(tmp, info.filename);
    expect(existsSync(tarball), `no ${tarball}`);
    const files = info.files.map((f) => f.path);
    for (const want of ['dist/runtime/index.js', 'dist/runtime/index.d.ts', 'bin/qcop.js', `prebuilds/linux-${process.arch}/qcop_native.node`]) {
      expect(files.includes(want), `${want} is not in the package`);
    }
    const leaked = files.filter((f) => /^(test|out|\.cache|targets)\//.test(f));
    expect(!leaked.length, `package ships ${leaked.slice(0, 5).join(', ')}`);
    return `${info.filename}, ${(info.size / 1024).toFixed(0)} KiB packed, ${info.entryCount} files, ${Date.now() - t0} ms`;
  });
  if (!ok) return;

  const project = join(tmp, 'app');
  const installed = await tally.check('npm install <tarball> into an empty project', async () => {
    spawnSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'qcop-pack-test', version: '1.0.0', private: true, type: 'module' }, null, 2));
    const t1 = Date.now();
    const r = npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], project);
    expect(r.status === 0, `npm install failed: ${(r.stderr || '').trim().split('\n').slice(-10).join('\n')}`);
    expect(existsSync(join(project, 'node_modules/qcop/package.json')), 'qcop not in node_modules');
    return `${Date.now() - t1} ms`;
  });
  if (!installed) return;
  writeFileSync(join(project, 'app.mjs'), PROGRAM);
  writeFileSync(join(project, 'typed.ts'), TYPED);

  await tally.check('tsc --noEmit type-checks a .ts file importing connect and SharedMemory', async () => {
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false,
        types: ['node'], typeRoots: [join(REPO, 'node_modules/@types')] },
      files: ['typed.ts'],
    }, null, 2));
    const r = spawnSync(join(REPO, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8', timeout: T });
    expect(r.status === 0, `tsc exit ${r.status}: ${(r.stdout + r.stderr).trim().split('\n').slice(0, 15).join('\n')}`);
  });

  await optionalCarrierChecks(project, tmp);

  // One broker from the installed package serves both Node versions' clients.
  const sock = join(tmp, 'q.sock');
  const broker = start(process.execPath, [join(project, 'node_modules/qcop/bin/qcopd.js'), '--socket', sock], { timeoutMs: 10 * 60000, cwd: project });
  const up = await tally.check('qcopd from the installed package accepts connections', async () => {
    await waitForSocket(sock, 20000, () => !broker.done);
  });
  if (!up) return;
  await checksWith(`node ${process.version}`, process.execPath, project, sock);

  const n18 = spawnSync('bash', [join(REPO, 'scripts/node18.sh')], { encoding: 'utf8', timeout: 10 * 60000 });
  const node18 = join(n18.stdout.trim(), 'node');
  const have18 = await tally.check('Node 18 runtime cached (scripts/node18.sh)', async () => {
    expect(n18.status === 0 && existsSync(node18), `scripts/node18.sh failed: ${n18.stderr}`);
  });
  if (have18) await checksWith('node 18', node18, project, sock);
  broker.kill('SIGTERM');
  await broker.exited;
}

try {
  await main();
} catch (e) {
  tally.record('pack suite', false, e?.stack ?? String(e));
} finally {
  await cleanup();
}
console.log(`${tally.passed} passed, ${tally.failed} failed`);
process.exit(tally.failed ? 1 : 0);
