#!/usr/bin/env node
// build-native.mjs owns compiling runtime/native/*.c into prebuilds/linux-<arch>/qcop_native.node.
// `--host` (run by npm install) builds for this machine only and never fails the install;
// without it, all three targets are built with Debian's cross compilers (installed if root).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'runtime/native');
const sources = readdirSync(nativeDir).filter((f) => f.endsWith('.c')).sort().map((f) => join(nativeDir, f));
const hostOnly = process.argv.includes('--host');
const common = ['-shared', '-fPIC', '-O2', '-s', '-Wall', '-pthread', '-fvisibility=hidden',
  '-Wl,-z,noexecstack', '-Wl,--as-needed'];

/** Targets by Node's `process.arch`; linux-arm is ARMv6 hard-float so it runs on every Pi. */
const targets = {
  x64: { cc: 'x86_64-linux-gnu-gcc', pkg: 'gcc-x86-64-linux-gnu', flags: [] },
  arm64: { cc: 'aarch64-linux-gnu-gcc', pkg: 'gcc-aarch64-linux-gnu', flags: [] },
  arm: { cc: 'arm-linux-gnueabihf-gcc', pkg: 'gcc-arm-linux-gnueabihf',
    // Debian's armhf crt files are ARMv7 Thumb-2; a shared object needs none of them.
    flags: ['-march=armv6+fp', '-mfpu=vfp', '-mfloat-abi=hard', '-marm', '-nostartfiles'], cpuArch: 'v6' },
};

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Finds a folder holding node_api.h: Node's own include dir, system dirs, then the node-gyp cache. */
function findHeaders(allowDownload) {
  const v = process.versions.node;
  const candidates = [
    process.env.QCOP_NODE_INCLUDE,
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include/node'),
    resolve(process.execPath, '../../include/node'),
    '/usr/include/node', '/usr/local/include/node',
    join(homedir(), '.cache/node-gyp', v, 'include/node'),
    join(homedir(), '.node-gyp', v, 'include/node'),
  ];
  for (const base of [join(homedir(), '.cache/node-gyp'), join(homedir(), '.node-gyp')]) {
    // Any Node >= 18 header set declares the N-API 8 functions we use.
    if (existsSync(base)) for (const d of readdirSync(base)) candidates.push(join(base, d, 'include/node'));
  }
  const found = candidates.find((d) => d && existsSync(join(d, 'node_api.h')));
  if (found || !allowDownload) return found;
  console.error('build-native: no Node headers found; fetching them with `npx node-gyp install`');
  spawnSync('npx', ['--yes', 'node-gyp', 'install'], { stdio: 'inherit' });
  return findHeaders(false);
}

function compile(arch, cc, flags, include) {
  const outDir = join(root, 'prebuilds', `linux-${arch}`);
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, 'qcop_native.node');
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync(cc, [...common, ...flags, `-I${include}`, '-o', tmp, ...sources], { stdio: 'inherit' });
  renameSync(tmp, out); // rename, never overwrite in place: a running process may have it mapped
  return out;
}

/** Checks what the ELF file claims: machine, and for ARM the CPU architecture tag. */
function verify(arch, file) {
  const t = targets[arch];
  if (has('readelf')) {
    const text = execFileSync('readelf', ['-A', '-h', file], { encoding: 'utf8' });
    const machine = /Machine:\s+(.*)/.exec(text)?.[1] ?? '?';
    const cpu = /Tag_CPU_arch:\s+(\S+)/.exec(text)?.[1];
    if (t.cpuArch && cpu !== t.cpuArch) throw new Error(`${file}: Tag_CPU_arch ${cpu}, expected ${t.cpuArch}`);
    if (arch === process.arch) loadCheck(file);
    return `${machine}${cpu ? ` (${cpu})` : ''}`;
  }
  if (arch === process.arch) loadCheck(file);
  return '';
}

function loadCheck(file) {
  const code = `const m = require(${JSON.stringify(file)}); if (typeof m.ownedLockAcquire !== 'function') process.exit(3);`;
  const r = spawnSync(process.execPath, ['-e', code], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${file} does not load in this Node`);
}

function main() {
  if (process.platform !== 'linux') {
    console.error(`build-native: the addon is Linux-only; ${process.platform} gets no shared memory`);
    process.exit(hostOnly ? 0 : 1);
  }
  const include = findHeaders(true);
  if (!include) {
    console.error('build-native: ENONATIVE no Node headers (node_api.h) found; set QCOP_NODE_INCLUDE');
    process.exit(hostOnly ? 0 : 1);
  }
  if (hostOnly) {
    const cc = ['cc', 'gcc', 'clang'].find(has);
    if (!cc) {
      console.error('build-native: no C compiler (apt-get install gcc); keeping any prebuilt binary, ' +
        'shared memory is unavailable without one');
      process.exit(0);
    }
    try {
      const out = compile(process.arch, cc, targets[process.arch]?.flags ?? [], include);
      console.error(`build-native: ${out} ${statSync(out).size} bytes ${verify(process.arch, out)}`);
    } catch (e) {
      console.error(`build-native: host build failed (${e.message}); shared memory will be unavailable`);
    }
    return;
  }
  const missing = Object.entries(targets)
    .filter(([arch, t]) => !has(t.cc) && !(arch === process.arch && has('cc')))
    .map(([, t]) => t.pkg);
  if (missing.length) {
    const cmd = `apt-get install -y ${missing.join(' ')}`;
    if (process.getuid?.() !== 0 || !has('apt-get')) {
      console.error(`build-native: missing cross compilers; run as root:\n  apt-get update && ${cmd}`);
      process.exit(1);
    }
    execFileSync('sh', ['-c', `apt-get update; ${cmd}`], { stdio: 'inherit' });
  }
  const rows = [];
  for (const [arch, t] of Object.entries(targets)) {
    const cc = has(t.cc) ? t.cc : 'cc';
    const out = compile(arch, cc, t.flags, include);
    rows.push([`linux-${arch}`, statSync(out).size, verify(arch, out)]);
  }
  console.log('target        bytes  elf');
  for (const [name, size, elf] of rows) console.log(`${name.padEnd(12)} ${String(size).padStart(6)}  ${elf}`);
}

main();
