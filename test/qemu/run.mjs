#!/usr/bin/env node
// Owns: `npm run test:qemu`: prepares Debian's arm64/armhf Node 18 under QEMU, builds rpi-arm64 and rpi-armhf (and beaglebone-armhf for the serial check), and runs the scenarios and the in-process unit suite from copies of the built folders; prints `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildTestBundle, REPO } from '../../targets/build/bundle.mjs';
import { cleanup, ensureTool, Tally, tempDir } from './harness.mjs';
import { runScenarios } from './scenarios.mjs';
import { runSerialScenario } from './serial.mjs';
import { bundleUnitTests, runUnitBundle, selectUnitTests } from './unit.mjs';

const TARGETS = [
  { target: 'rpi-arm64', arch: 'arm64' },
  { target: 'rpi-armhf', arch: 'armhf' },
].filter((t) => !process.env.QCOP_QEMU_ARCH || process.env.QCOP_QEMU_ARCH.split(',').includes(t.arch));
const tally = new Tally();
const timings = [];

function step(label, cmd, args) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: REPO, encoding: 'utf8', timeout: 15 * 60000 });
  const ms = Date.now() - t0;
  timings.push([label, ms]);
  return { ...r, ms };
}

async function main() {
  const prep = step('QEMU prepare', 'bash', ['scripts/qemu/prepare.sh', ...TARGETS.map((t) => t.arch)]);
  const binfmt = /"binfmt":"(\w+)"/.exec(prep.stdout)?.[1] ?? 'unknown';
  tally.record('QEMU runtimes prepared (Debian Node 18 arm64/armhf)', prep.status === 0, prep.status === 0 ? `${prep.ms} ms, binfmt ${binfmt}` : (prep.stderr || prep.error?.message || '').trim());
  if (prep.status !== 0) return;

  const withSerial = TARGETS.some((t) => t.arch === 'armhf') && process.env.QCOP_QEMU_SERIAL !== '0';
  const names = [...TARGETS.map((t) => t.target), ...(withSerial ? ['beaglebone-armhf'] : [])];
  const build = step('build:target', process.execPath, ['scripts/build-target.mjs', ...names]);
  process.stdout.write(build.stdout.split('\n').map((l) => (l ? `     ${l}` : l)).join('\n'));
  tally.record(`build:target ${names.join(' ')}`, build.status === 0, build.status === 0 ? `${build.ms} ms` : build.stderr.trim());
  if (build.status !== 0) return;

  const socat = ensureTool('socat');
  const tmp = tempDir();
  const bundles = join(tmp, 'bundles');
  const peer = await buildTestBundle(join(REPO, 'test/qemu/peer.ts'), join(bundles, 'test-peer/peer.mjs'), { node: '18' });
  const lib = await import(pathToFileURL(peer).href);
  const { chosen, spawning } = selectUnitTests();
  let units = [];
  await tally.check(`unit suite bundles for Node 18 (${chosen.length} files; ${spawning.length} multi-process files left to the multi-process scenarios)`, async () => {
    units = await bundleUnitTests(chosen, join(bundles, 'test-unit'));
    if (!chosen.length) return 'no in-process test files yet';
  });

  for (const { target, arch } of TARGETS) {
    // Only the built folder goes to the "board"; the test helpers sit inside its copy so the
    // addon is found the way the shipped program finds it (prebuilds/ beside lib/).
    const board = join(tmp, arch);
    const folder = join(board, target);
    mkdirSync(board, { recursive: true });
    cpSync(join(REPO, 'out/targets', target), folder, { recursive: true });
    cpSync(bundles, folder, { recursive: true });
    const node = ['bash', join(REPO, 'scripts/qemu/node.sh'), arch];
    const { readyMs } = await runScenarios({ arch, node, folder, peer: join(folder, 'test-peer/peer.mjs'), lib, tmp: board, tally, socat });
    timings.push([`${arch} broker ready under emulation`, readyMs]);

    for (const u of units) {
      const bundle = join(folder, 'test-unit', u.file.replace(/^test\//, 'test/').replace(/\.ts$/, '.mjs'));
      const path = existsSync(bundle) ? bundle : u.bundle;
      const r = await runUnitBundle(node, path);
      tally.record(`${arch} unit ${u.file}`, r.failed === 0, r.failed === 0 ? `${r.passed} tests, ${r.ms} ms` : `${r.passed}/${r.total} passed, exit ${r.code}${r.signal ? ` ${r.signal}` : ''}\n${r.output.split('\n').slice(-25).map((l) => `     ${l}`).join('\n')}`);
    }
  }

  if (withSerial) {
    const board = join(tmp, 'beaglebone');
    const folder = join(board, 'beaglebone-armhf');
    mkdirSync(board, { recursive: true });
    cpSync(join(REPO, 'out/targets/beaglebone-armhf'), folder, { recursive: true });
    await runSerialScenario({ node: ['bash', join(REPO, 'scripts/qemu/node.sh'), 'armhf'], folder, lib, tmp: board, tally, socat });
  }
}

try {
  await main();
} catch (e) {
  tally.record('qemu suite', false, e?.stack ?? String(e));
} finally {
  await cleanup();
}
console.log('timings:');
for (const [label, ms] of timings) console.log(`  ${label.padEnd(36)} ${ms == null ? '-' : `${(ms / 1000).toFixed(2)} s`}`);
console.log(`${tally.passed} passed, ${tally.failed} failed`);
process.exit(tally.failed ? 1 : 0);
