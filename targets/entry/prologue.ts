// Owns: the runtime check and loader every target bundle starts with, written in ES5 so any old Node can parse it (esbuild builds it with target es5, which refuses newer syntax).

/** What the build injects from the target profile (targets/<name>.json). */
export interface TargetInfo {
  name: string;
  platform: string;
  arch: string;
  armVersion: number | null;
  minNode: string;
}

function parseVersion(v: string): number[] {
  var parts = String(v).replace(/^v/, '').split('.');
  var out: number[] = [];
  for (var i = 0; i < 3; i++) out.push(parseInt(parts[i], 10) || 0);
  return out;
}

function olderThan(have: string, want: string): boolean {
  var a = parseVersion(have), b = parseVersion(want);
  for (var i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

// The CPU's ARM architecture level from /proc/cpuinfo ("CPU architecture: 7"), or 0 when unknown
// (user-mode QEMU shows the host's cpuinfo): only a known, lower level refuses to start.
function cpuArmLevel(): number {
  try {
    var text = require('fs').readFileSync('/proc/cpuinfo', 'utf8');
    var m = /^CPU architecture\s*:\s*(\d+)/m.exec(text);
    return m ? parseInt(m[1], 10) : 0;
  } catch (e) {
    return 0;
  }
}

/** Why this bundle cannot run here, as one line, or null when it can. */
export function runtimeProblem(t: TargetInfo): string | null {
  var here = process.platform + '-' + process.arch;
  var want = t.platform + '-' + t.arch;
  if (here !== want) {
    return 'EINVAL: this qcop build is for ' + want + ' (target ' + t.name + '), but this machine is ' + here;
  }
  if (olderThan(process.version, t.minNode)) {
    return 'EINVAL: qcop (target ' + t.name + ') needs Node.js >= ' + t.minNode + ', but this is ' + process.version;
  }
  if (t.armVersion) {
    var level = cpuArmLevel();
    if (level && level < t.armVersion) {
      return 'EINVAL: this qcop build (target ' + t.name + ') needs an ARMv' + t.armVersion + ' CPU, but this one is ARMv' + level;
    }
  }
  return null;
}

/** Checks the runtime, then loads lib/<entry> beside this file and runs its main(argv); sets the exit code. */
export function start(prog: string, t: TargetInfo, argv: string[], entry: string): void {
  var problem = runtimeProblem(t);
  if (problem) {
    process.stderr.write(prog + ': ' + problem + '\n');
    process.exitCode = 1;
    return;
  }
  var path = require('path');
  var url = require('url').pathToFileURL(path.join(__dirname, 'lib', entry)).href;
  // import() hidden from the parser of an old Node, which would refuse the whole file.
  var load = new Function('u', 'return import(u)');
  load(url).then(function (m: { main: (a: string[]) => Promise<number> }) {
    return m.main(argv);
  }).then(function (code: number) {
    if (typeof code === 'number') process.exitCode = code;
  }, function (err: { code?: string; message?: string; stack?: string }) {
    var code = (err && err.code) || 'EFAIL';
    var text = String(err && err.message);
    process.stderr.write(prog + ': ' + (text.indexOf(code + ':') === 0 ? text : code + ': ' + text) + '\n');
    if (process.env.QCOP_DEBUG && err && err.stack) process.stderr.write(err.stack + '\n');
    process.exitCode = 1;
  });
}
