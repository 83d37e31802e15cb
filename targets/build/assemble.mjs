// Owns: putting a target folder together around its bundles (native binaries checked by ELF header and by loading, systemd unit, config, README, package.json), the tarball, and the size figures.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { DAEMON_NODE_FLAGS } from '../daemon-flags.mjs';
import { basename, dirname, join, relative } from 'node:path';
import { REPO } from './bundle.mjs';
import { elfProblems } from './elf.mjs';

const NATIVE = 'qcop_native.node';
/** The broker option that turns each carrier on (runtime/cli/broker-command.ts). */
const CARRIER_OPTION = { tcp: '"tcp": "HOST:PORT" or "links"', serial: '"serial": [{ "device": ..., "export": [...], "import": [...] }]', dbus: '"dbus": {...}', mqtt: '"mqtt": { "url": ..., "prefix": ..., "export": [...], "import": [...] }' };

function fill(template, values) {
  return template.replace(/\{\{(\w+)\}\}/g, (_, k) => {
    if (!(k in values)) throw new Error(`template value {{${k}}} missing`);
    return values[k];
  });
}

/** Runs `node -e code` for the profile's architecture: host Node for x64 on x64, QEMU for ARM when prepared; null when impossible here. */
export function nodeFor(profile) {
  if (profile.arch === process.arch) return [process.execPath];
  if (profile.qemu && existsSync(join(REPO, '.cache/qemu', profile.qemu, 'usr/bin/node'))) {
    return ['bash', join(REPO, 'scripts/qemu/node.sh'), profile.qemu];
  }
  return null;
}

/** Makes sure prebuilds/linux-<arch>/qcop_native.node exists (building all with scripts/build-native.mjs if not) and fits the profile. */
export function sourceNative(profile) {
  const file = join(REPO, 'prebuilds', `linux-${profile.arch}`, NATIVE);
  if (!existsSync(file)) {
    const script = join(REPO, 'scripts/build-native.mjs');
    if (!existsSync(script)) throw new Error(`${relative(REPO, file)} is missing and scripts/build-native.mjs does not exist to build it`);
    console.error(`build-target: ${relative(REPO, file)} missing; running scripts/build-native.mjs`);
    const r = spawnSync(process.execPath, [script], { stdio: 'inherit', cwd: REPO });
    if (r.status !== 0 || !existsSync(file)) throw new Error(`could not build ${relative(REPO, file)}: node scripts/build-native.mjs failed (cross compilers: apt-get install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf)`);
  }
  const { info, problems } = elfProblems(file, profile);
  if (problems.length) throw new Error(problems.join('; '));
  return { file, info };
}

/** Loads every .node file of the folder's prebuilds/linux-<arch>/ with the target's own Node (QEMU for ARM): 'loaded', 'skipped (...)', or throws. */
export function loadCheck(profile, dir) {
  const node = nodeFor(profile);
  if (!node) return 'skipped (no QEMU runtime: scripts/qemu/prepare.sh)';
  const files = readdirSync(dir).filter((f) => f.endsWith('.node')).map((f) => join(dir, f));
  const code = `for (const f of ${JSON.stringify(files)}) { try { require(f); } catch (e) { console.error(f + ': ' + e.message); process.exitCode = 1; } }`;
  const r = spawnSync(node[0], [...node.slice(1), '-e', code], { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`native binary does not load in ${profile.arch} Node: ${(r.stderr || r.error?.message || '').trim()}`);
  return `${files.length} binar${files.length === 1 ? 'y' : 'ies'} loaded`;
}

/** Copies serialport's prebuilt binaries for the arch next to ours, where its loader (node-gyp-build, <bundle dir>/../prebuilds) looks. */
export function copySerialNative(profile, outDir) {
  const src = join(REPO, 'node_modules/@serialport/bindings-cpp/prebuilds', `linux-${profile.arch}`);
  if (!existsSync(src)) return [`serialport has no prebuilt binary for linux-${profile.arch}`];
  const dst = join(outDir, 'prebuilds', `linux-${profile.arch}`);
  mkdirSync(dst, { recursive: true });
  const warnings = [];
  for (const f of readdirSync(src)) {
    if (f.includes('musl')) continue; // Debian and Raspberry Pi OS use glibc
    // node-gyp-build picks armv<N> by the Node build's arm_version: an ARMv7 board needs armv7 only.
    const armv = /\.armv(\d)\./.exec(f)?.[1];
    if (profile.arch === 'arm' && armv && Number(armv) < profile.armVersion) continue;
    copyFileSync(join(src, f), join(dst, f));
  }
  if (profile.arch === 'arm' && profile.armVersion === 6 && !readdirSync(src).some((f) => f.includes('armv6'))) {
    warnings.push('serialport ships no ARMv6 binary: the serial channel will not load on a Pi Zero/1');
  }
  return warnings;
}

/** Writes qcopd.service, qcopd.json, README.md and package.json into the folder. */
export function writeFiles(profile, outDir, included, version) {
  const serial = included.includes('serial');
  const network = included.some((c) => ['tcp', 'mqtt'].includes(c));
  const families = ['AF_UNIX', ...(network ? ['AF_INET', 'AF_INET6'] : [])];
  const unit = fill(readFileSync(join(REPO, 'targets/templates/qcopd.service'), 'utf8'), {
    name: profile.name,
    nodeFlags: DAEMON_NODE_FLAGS.join(' '),
    supplementaryGroups: serial ? 'SupplementaryGroups=dialout\n' : '',
    deviceAllow: serial ? 'DeviceAllow=char-ttyS rw\nDeviceAllow=char-ttyUSB rw\nDeviceAllow=char-ttyACM rw\n' : '',
    addressFamilies: families.join(' '),
    // Path-named Unix sockets (ours, systemd's NOTIFY_SOCKET, D-Bus) work across network namespaces.
    network: network ? '' : 'PrivateNetwork=yes\nIPAddressDeny=any\n',
  });
  writeFileSync(join(outDir, 'qcopd.service'), unit);
  const config = JSON.stringify(profile.config, null, 2);
  writeFileSync(join(outDir, 'qcopd.json'), `${config}\n`);
  // The policy folder the profile's aclDir names, with one file that allows what the socket's group allowed before.
  mkdirSync(join(outDir, 'acl.d'), { recursive: true });
  copyFileSync(join(REPO, 'targets/templates/acl-qcop-group.json'), join(outDir, 'acl.d/00-qcop-group.json'));
  const readme = fill(readFileSync(join(REPO, 'targets/templates/README.md'), 'utf8'), {
    name: profile.name,
    description: profile.description,
    version,
    arch: profile.arch,
    armNote: profile.armVersion ? ` (ARMv${profile.armVersion}${profile.floatAbi === 'hard' ? ' hard-float' : ''})` : '',
    minNode: profile.minNode,
    channels: included.length ? included.map((c) => `\`${c}\``).join(', ') : 'none (Unix sockets and shared memory only)',
    serialNote: serial ? ', and serialport\'s binary for the serial carrier' : '',
    serialInstall: serial ? 'sudo usermod -aG dialout qcop      # the serial carrier opens /dev/tty*\n' : '',
    carrierConfig: included.length
      ? `Carriers start only when their options are present: ${included.map((c) => `\`${CARRIER_OPTION[c] || c}\``).join(', ')} ` +
        '(see docs/CONFIG.md and docs/SERIAL.md in the qcop sources). Without them the broker never loads their code.\n\n'
      : '',
    config,
  });
  writeFileSync(join(outDir, 'README.md'), readme.replace(/^<!--.*-->\n/, ''));
  // Pins the launchers to CommonJS even inside a folder whose parent says "type": "module".
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify({ name: `qcop-${profile.name}`, version, private: true, type: 'commonjs' }, null, 2)}\n`);
}

/** Problems `systemd-analyze verify` finds in the unit (empty when fine, or when systemd-analyze is absent). */
export function verifyUnit(outDir) {
  const r = spawnSync('systemd-analyze', ['verify', join(outDir, 'qcopd.service')], { encoding: 'utf8', timeout: 30000 });
  if (r.error) return [];
  return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !/Cannot add dependency job|No such file or directory/.test(l));
}

/** Writes out/targets/<name>.tar.gz with the folder as its single top directory; returns its size. */
export function tarball(outDir) {
  const tgz = `${outDir}.tar.gz`;
  const r = spawnSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '--sort=name', '-czf', tgz, '-C', dirname(outDir), basename(outDir)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return statSync(tgz).size;
}

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
}

/** Byte counts of a target folder: js (launchers and lib, without maps), maps, native (.node), other, total. */
export function sizes(outDir) {
  const s = { js: 0, maps: 0, native: 0, other: 0, total: 0 };
  for (const f of walk(outDir)) {
    const n = statSync(f).size;
    s.total += n;
    if (/\.(m|c)?js$/.test(f)) s.js += n;
    else if (f.endsWith('.map')) s.maps += n;
    else if (f.endsWith('.node')) s.native += n;
    else s.other += n;
  }
  return s;
}
