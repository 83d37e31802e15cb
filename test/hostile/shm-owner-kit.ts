// Plumbing of the shm-owner hostile tests: the root check, processes run as other users, the attacker, and the
// cleanup of every /dev/shm entry and semaphore of this run (never reading one: some are FIFOs or links).
import { lstatSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../runtime/native/index.js';
import { escapeKey } from '../../runtime/shm/names.js';
import { Proc, QCOP, ROOT } from '../helpers/procs.js';

export const NOBODY = 65534;
/** Key prefix of this run: every object the tests plant or create has it. */
export const TAG = `qcop-hostile-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const FIXTURES = path.join(ROOT, 'test/hostile/fixtures');

let counter = 0;
/** A fresh key of this run. */
export function key(what: string): string {
  return `${TAG}/${what}-${++counter}`;
}

/**
 * True when running as root. Otherwise registers one failing test that gives the command to run the
 * file as root (these tests need other users; they never skip silently), and the caller runs only it.
 */
export function asRoot(file: string): boolean {
  if (process.getuid?.() === 0) return true;
  test(`${file} needs root (it runs attackers as other users)`, () => {
    assert.unreachable(`run it as root: cd ${ROOT} && npm run build && sudo node --import tsx test/hostile/${file}`);
  });
  return false;
}

/** Runs `node SCRIPT args` as uid:gid (setpriv, no supplementary groups); SCRIPT is a fixture name or a path. */
export function runAs(uid: number, gid: number, script: string, args: string[]): Proc {
  return new Proc('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath,
    path.resolve(FIXTURES, script), ...args]);
}

/** `qcop shm CMD` run as uid:gid; resolves with its parsed output (exit 0 asserted). */
export async function shmCliAs(uid: number, gid: number, cmd: 'ls' | 'gc'): Promise<any> {
  const p = runAs(uid, gid, QCOP, ['shm', cmd]);
  const { code } = await p.exited;
  assert.is(code, 0, `qcop shm ${cmd} as uid ${uid}: ${p.stderr}`);
  return JSON.parse(p.lines.join('\n'));
}

/** System V semaphores the attacker made: removed at cleanup. */
const attackerSemids = new Set<number>();

/** Runs the attacker (test/hostile/fixtures/shm-owner-attacker.mjs) as nobody; resolves with its report. */
export async function attack(...args: string[]): Promise<{ planted: string; semid?: number; proc: Proc }> {
  const proc = runAs(NOBODY, NOBODY, 'shm-owner-attacker.mjs', args);
  const report = await proc.waitJson((v) => typeof v.planted === 'string', 10000, `attacker ${args[0]}`);
  if (typeof report.semid === 'number' && args[0] === 'semaphore') attackerSemids.add(report.semid);
  return { ...report, proc };
}

/** Removes every /dev/shm entry of this run (files, links, FIFOs, folders) and the attacker's semaphores. */
export function purgeRun(): void {
  const tag = escapeKey(TAG);
  for (const e of readdirSync('/dev/shm')) {
    if (!e.includes(tag)) continue;
    const p = `/dev/shm/${e}`;
    try {
      if (lstatSync(p).isDirectory()) rmdirSync(p); else unlinkSync(p);
    } catch { /* gone */ }
  }
  for (const id of attackerSemids) {
    try { native().semRemove(id); } catch { /* gone */ }
  }
  attackerSemids.clear();
}

/** The /dev/shm entries of this run. */
export function runEntries(): string[] {
  const tag = escapeKey(TAG);
  return readdirSync('/dev/shm').filter((e) => e.includes(tag));
}
