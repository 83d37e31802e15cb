// Owns: the esbuild calls that turn the TypeScript sources into a target's JavaScript: ES5 launchers (qcop.js, qcopd.js), the ESM program with optional channels split into lazily loaded chunks, and test-only bundles for QEMU.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHANNELS_DIR = join(REPO, 'channels');

// Node 18 ESM chunks that bundle CommonJS code (serialport's loader, node-gyp-build) need these.
const ESM_BANNER =
  'import{createRequire as __qcopCR}from"module";import{fileURLToPath as __qcopFU}from"url";' +
  'import{dirname as __qcopDN}from"path";const require=__qcopCR(import.meta.url),' +
  '__filename=__qcopFU(import.meta.url),__dirname=__qcopDN(__filename);';

/** npm packages each optional channel needs at run time, bundled into that channel's chunk only. */
export const CHANNEL_PACKAGES = { serial: ['serialport'], dbus: ['dbus-next'], mqtt: ['mqtt'], tcp: [] };
/**
 * Optional native helpers that dependencies require() inside try/catch: left out so bundles stay
 * pure JavaScript (cbor-extract: cbor-x falls back to JS, docs/PLATFORM-NOTES.md §2; x11, usocket: dbus-next's
 * X11 address lookup and abstract-socket fallback, unused on a board).
 */
const ABSENT = /^(cbor-extract|x11|usocket|abstract-socket)$/;
/** Packages that must never reach the static graph of lib/main.mjs or lib/daemon.mjs (they belong to optional channels). */
const OPTIONAL_PACKAGES = ['serialport', '@serialport', 'dbus-next', 'mqtt'];

const requireFromRepo = createRequire(join(REPO, 'package.json'));

/** Whether an npm package can be resolved from the repository. */
export function hasPackage(name) {
  try {
    requireFromRepo.resolve(`${name}/package.json`);
    return true;
  } catch {
    try { requireFromRepo.resolve(name); return true; } catch { return false; }
  }
}

/** The entry file of channels/<name>, or null when that channel is not written yet. */
export function channelEntry(name) {
  for (const f of ['index.ts', 'index.js', `${name}.ts`]) {
    const p = join(CHANNELS_DIR, name, f);
    if (existsSync(p)) return p;
  }
  return null;
}

/**
 * Channels of a profile that can go into the build, and warnings for those left out
 * (source not written yet, or an npm package such as serialport not installed).
 */
export function resolveChannels(profile) {
  const included = [];
  const warnings = [];
  for (const name of profile.channels) {
    if (!channelEntry(name)) { warnings.push(`channel '${name}' left out: channels/${name}/ has no index.ts yet`); continue; }
    const missing = (CHANNEL_PACKAGES[name] || []).filter((p) => !hasPackage(p));
    if (missing.length) { warnings.push(`channel '${name}' left out: npm package ${missing.join(', ')} not installed`); continue; }
    included.push(name);
  }
  return { included, warnings };
}

/**
 * esbuild bundles `import('./x.js')` but leaves `const spec = './x.js'; import(spec)` alone, which
 * would break in a bundle (the path is relative to the source tree). Folds such constants into the
 * call when the target exists (or is a channel, which the plugin below resolves), so lazily loaded
 * modules become chunks of the bundle.
 */
export function foldImportSpecifiers(source, file) {
  return source.replace(/\bimport\((\w+)\)/g, (call, name) => {
    const m = new RegExp(`\\bconst\\s+${name}\\s*=\\s*(['"])(\\.{1,2}/[^'"]+)\\1`).exec(source);
    if (!m) return call;
    const target = resolve(dirname(file), m[2]);
    if (target.startsWith(CHANNELS_DIR + sep)) return call; // rewritten by channelSpecifiers()
    const exists = [target, target.replace(/\.js$/, '.ts')].some((f) => existsSync(f));
    return exists ? `import(${JSON.stringify(m[2])})` : call;
  });
}

/**
 * With code splitting, esbuild gives `import('pkg')` of a CommonJS package only `default`
 * (evanw/esbuild#3245), where Node also gives the named exports (`SerialPort`). The same
 * namespace shape is restored for bare package specifiers; relative imports are ESM sources.
 */
export function cjsInterop(source) {
  return source.replace(/\bimport\((['"])([@a-z][^'"./][^'"]*)\1\)/g, (call) =>
    `${call}.then((m) => (m.default && typeof m.default === 'object' && Object.keys(m).length === 1 ? { ...m.default, default: m.default } : m))`);
}

const CHANNEL_LITERAL = /(['"])((?:\.\.?\/)+channels\/([\w-]+)\/([\w.-]+)\.js)\1/g;

/** Output name (in lib/) of a channel module: channel-<name> for index.js, channel-<name>-<file> otherwise. */
function channelChunk(name, file) {
  return file === 'index' ? `channel-${name}` : `channel-${name}-${file}`;
}

/**
 * runtime/ reaches carriers through string specifiers ('../../channels/tcp/index.js') that it
 * import()s only when configured. In the bundle those become './channel-tcp.mjs', a sibling
 * entry point in lib/ (ESM splitting keeps one copy of the shared runtime between them), left
 * external so esbuild does not pull the carrier into main.mjs.
 */
export function channelSpecifiers(source, file) {
  return source.replace(CHANNEL_LITERAL, (lit, q, spec, name, base) => {
    if (!resolve(dirname(file), spec).startsWith(CHANNELS_DIR + sep)) return lit;
    return `${q}./${channelChunk(name, base)}.mjs${q}`;
  });
}

/** Every channel module runtime/ may load lazily: [{ name, file, chunk }], from its string specifiers. */
export function channelModules() {
  const found = new Map();
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(CHANNEL_LITERAL)) {
          if (!resolve(dirname(p), m[2]).startsWith(CHANNELS_DIR + sep)) continue;
          const chunk = channelChunk(m[3], m[4]);
          found.set(chunk, { name: m[3], file: join(CHANNELS_DIR, m[3], `${m[4]}.ts`), chunk });
        }
      }
    }
  };
  walk(join(REPO, 'runtime'));
  return [...found.values()].sort((a, b) => a.chunk.localeCompare(b.chunk));
}

// Resolution rules shared by every bundle: cbor-x stays pure JavaScript (docs/PLATFORM-NOTES.md §2); in a
// target build (`included` set) carriers become sibling entry points (see channelSpecifiers) and
// those not in `included` a module that throws a clear error when imported.
function qcopPlugin({ included, targetName, warnings }) {
  return {
    name: 'qcop-target',
    setup(build) {
      build.onResolve({ filter: ABSENT }, (args) => ({ path: args.path, namespace: 'qcop-absent' }));
      build.onLoad({ filter: /.*/, namespace: 'qcop-absent' }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`${args.path} is left out of qcop bundles`)});`,
        loader: 'js',
      }));
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        const inRuntime = args.path.startsWith(join(REPO, 'runtime') + sep);
        if (!inRuntime && !args.path.startsWith(CHANNELS_DIR + sep)) return undefined;
        const source = readFileSync(args.path, 'utf8');
        let contents = cjsInterop(source);
        if (inRuntime) contents = foldImportSpecifiers(contents, args.path);
        if (inRuntime && included) contents = channelSpecifiers(contents, args.path);
        return contents === source ? undefined : { contents, loader: 'ts', resolveDir: dirname(args.path) };
      });
      if (!included) return;
      build.onResolve({ filter: /^\.\/channel-[\w-]+\.mjs$/ }, (args) => ({ path: args.path, external: true }));
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        const abs = resolve(args.resolveDir, args.path);
        if (!abs.startsWith(CHANNELS_DIR + sep) || !args.importer) return undefined;
        if (args.importer.startsWith(CHANNELS_DIR + sep)) return undefined; // a carrier's own modules
        warnings.push(`channels/${relative(CHANNELS_DIR, abs)} is imported statically from ${relative(REPO, args.importer)}: every broker would load it`);
        return undefined;
      });
      build.onResolve({ filter: /^qcop-missing-channel:/ }, (args) => ({ path: args.path.split(':')[1], namespace: 'qcop-missing-channel' }));
      build.onLoad({ filter: /.*/, namespace: 'qcop-missing-channel' }, (args) => ({
        // QcopError from the same sources, so the CLI reports it as "ENOTSUP: ..." (exit 1), not a crash.
        contents: `import { QcopError } from ${JSON.stringify(join(REPO, 'runtime/protocol/errors.ts'))};\n` +
          `throw new QcopError('ENOTSUP', ${JSON.stringify(
            `carrier '${args.path}' (channels/${args.path}) is not included in this build (target ${targetName}); ` +
            `add it to "channels" in targets/${targetName}.json and rebuild`)});`,
        loader: 'js',
        resolveDir: REPO,
      }));
    },
  };
}

const COMMON = {
  bundle: true,
  platform: 'node',
  logLevel: 'silent',
  absWorkingDir: REPO,
  define: { 'process.env.CBOR_NATIVE_ACCELERATION_DISABLED': '"true"' },
};

/** The two ES5 launchers (qcop.js, qcopd.js): the runtime check of targets/entry/prologue.ts with the profile baked in. */
export async function buildLaunchers(profile, outDir) {
  const target = { name: profile.name, platform: profile.platform, arch: profile.arch, armVersion: profile.armVersion, minNode: profile.minNode };
  await esbuild.build({
    ...COMMON,
    entryPoints: { qcop: 'targets/entry/qcop.ts', qcopd: 'targets/entry/qcopd.ts' },
    outdir: outDir,
    format: 'cjs',
    target: 'es5',
    minify: false, // a few hundred bytes; kept readable so a board's admin can see what it checks
    define: { __QCOP_TARGET__: JSON.stringify(target) },
    banner: { js: '#!/usr/bin/env node' },
  });
}

/**
 * The program behind the launchers: lib/main.mjs plus shared and lazily loaded chunks, ESM with
 * code splitting so each optional channel (and its npm packages) sits in chunks that only a
 * dynamic import() reaches. Returns { metafile, warnings }.
 */
export async function buildProgram(profile, outDir, included) {
  const warnings = [];
  const entryPoints = { main: 'targets/entry/main.ts', daemon: 'targets/entry/daemon.ts' };
  for (const m of channelModules()) {
    // A carrier left out of the profile still gets its file: a stub that says so when loaded.
    entryPoints[m.chunk] = included.includes(m.name) && existsSync(m.file) ? m.file : `qcop-missing-channel:${m.name}`;
  }
  const result = await esbuild.build({
    ...COMMON,
    entryPoints,
    outdir: join(outDir, 'lib'),
    format: 'esm',
    splitting: true,
    target: `node${profile.minNode.split('.')[0]}`,
    minify: true,
    sourcemap: 'linked',
    sourcesContent: false,
    outExtension: { '.js': '.mjs' },
    chunkNames: '[name]-[hash]',
    banner: { js: ESM_BANNER },
    metafile: true,
    plugins: [qcopPlugin({ included, targetName: profile.name, warnings })],
  });
  for (const w of result.warnings) warnings.push(esbuild.formatMessagesSync([w], { kind: 'warning' }).join('').trim());
  return { metafile: result.metafile, warnings };
}

/** Output files of a metafile that load when lib/<entry> starts (daemon.mjs: qcopd; main.mjs: qcop): the entry and its static imports. */
export function eagerOutputs(metafile, entry = 'daemon.mjs') {
  const outputs = metafile.outputs;
  const start = Object.keys(outputs).find((o) => o.endsWith(`lib${sep}${entry}`) || o.endsWith(`lib/${entry}`));
  const seen = new Set();
  const walk = (o) => {
    if (!o || seen.has(o)) return;
    seen.add(o);
    for (const imp of outputs[o].imports || []) if (imp.kind === 'import-statement' && !imp.external) walk(imp.path);
  };
  walk(start);
  return [...seen];
}

/** Inputs (source files) that a broker loads at start but should not: channel code and their packages. */
export function eagerOptionalInputs(metafile) {
  const bad = [];
  for (const o of [...eagerOutputs(metafile, 'daemon.mjs'), ...eagerOutputs(metafile, 'main.mjs')]) {
    for (const input of Object.keys(metafile.outputs[o].inputs)) {
      const inChannels = input.startsWith('channels/');
      const inPkg = OPTIONAL_PACKAGES.some((p) => input.includes(`node_modules/${p}/`));
      if (inChannels || inPkg) bad.push(input);
    }
  }
  return bad;
}

/** Test-only bundle of a TypeScript file (library entry or a uvu test) as one ESM file for the given Node target. */
export async function buildTestBundle(entry, outFile, { node = '18', external = [] } = {}) {
  mkdirSync(dirname(outFile), { recursive: true });
  await esbuild.build({
    ...COMMON,
    entryPoints: [entry],
    outfile: outFile,
    format: 'esm',
    target: `node${node}`,
    sourcemap: 'inline',
    banner: { js: ESM_BANNER },
    external,
    plugins: [qcopPlugin({ included: null, targetName: 'test', warnings: [] })],
  });
  return outFile;
}
