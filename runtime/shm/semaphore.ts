// SystemSemaphore: a named counting semaphore (System V, SEM_UNDO) whose units come back when their holder dies.
import { native } from '../native/index.js';
import { QcopError } from '../protocol/errors.js';
import { F } from './header.js';
import { currentUid, systemName, validateKey } from './names.js';
import { SquatError, trustedSemid } from './ownership.js';
import { attachEntry, createEntry, releaseEntry, removeIfStale, groupOrNone, sys, type CreateOptions, type Entry } from './registry.js';

/** Largest semaphore value System V allows (SEMVMX). */
export const MAX_SEMAPHORE_VALUE = 32767;
const SLICE_MS = 250; // a worker waits at most this long before the loop looks at close() again

/** Options of `SystemSemaphore.open`. */
export interface SemaphoreOpenOptions extends CreateOptions {
  /** Units when `open` creates the semaphore (ignored otherwise); 0 by default, as in Qt. */
  initial?: number;
  /** Permission bits, 0o600 by default (0o660 when `group` is given). */
  mode?: number;
  /** Group (gid or name) that gets the group bits of `mode`. */
  group?: number | string;
}

/** Options of `acquire()`. */
export interface AcquireOptions { timeoutMs?: number }

// Units this process took with SEM_UNDO and has not given back, per semid: the kernel returns exactly these at exit.
const held = new Map<number, number>();

/** A handle on the semaphore `key`; units are counted per process, not per handle. */
export class SystemSemaphore {
  #entry: Entry | null;
  readonly #semid: number;

  private constructor(readonly key: string, entry: Entry, semid: number) {
    this.#entry = entry;
    this.#semid = semid; // verified once (ownership.ts trustedSemid), never read from the file again
  }

  /**
   * Opens `key`, creating it with `initial` units when it does not exist (or is stale). EACCES when
   * another user squats the name or its registry names a semaphore that is not the user's own.
   */
  static async open(key: string, opts: SemaphoreOpenOptions = {}): Promise<SystemSemaphore> {
    validateKey(key);
    const initial = opts.initial ?? 0;
    if (!Number.isInteger(initial) || initial < 0 || initial > MAX_SEMAPHORE_VALUE) {
      throw new QcopError('EINVAL', `initial must be an integer 0..${MAX_SEMAPHORE_VALUE}`);
    }
    const gid = groupOrNone(opts.group);
    native();
    const name = systemName('semaphore', key);
    for (let attempt = 0; attempt < 20; attempt++) {
      let entry: Entry | null = null;
      try {
        entry = await attachEntry(name, 'semaphore', key, false, true);
      } catch (e) {
        // A squatter makes root create afresh (createEntry removes it); anyone else gets its EACCES.
        const squat = e instanceof SquatError && currentUid() === 0;
        if ((e as QcopError).code !== 'ENOENT' && !squat) throw e;
      }
      if (entry) {
        const semid = trustedSemid(entry.st, entry.owner, entry.header);
        if (typeof semid === 'number') return new SystemSemaphore(key, entry, semid);
        // Never used, never removed: a semaphore we cannot vouch for. A vanished one makes the registry stale.
        releaseEntry(entry, 'semaphore');
        if (!semid.gone) throw new QcopError('EACCES', `semaphore '${key}': ${semid.problem}`);
        if (removeIfStale(name, 'semaphore') === 'live') throw new QcopError('EIDRM', `semaphore '${key}' was removed while in use`);
        continue;
      }
      let created: Entry;
      try {
        created = createEntry(name, 'semaphore', key, 0, 4096, 0, opts, gid);
      } catch (e) {
        if ((e as QcopError).code === 'EEXIST') continue; // somebody else created it: attach
        throw e;
      }
      let semid = -1;
      try {
        const mode = opts.mode ?? (gid >= 0 ? 0o660 : 0o600);
        semid = sys('semget', (n) => n.semCreate(mode, initial, gid));
        created.header.set(F.SEMID, semid);
        created.header.markReady();
        return new SystemSemaphore(key, created, semid);
      } catch (e) {
        releaseEntry(created, 'semaphore', semid >= 0 ? semid : null);
        throw e;
      }
    }
    throw new QcopError('EEXIST', `semaphore '${key}' keeps changing under us`);
  }

  /** Units available now. */
  get value(): number {
    this.#check();
    return sys('semctl', (n) => n.semStat(this.#semid).value);
  }

  /** Takes one unit, waiting off the event loop; rejects ETIMEDOUT after `timeoutMs`, ECLOSED on close(). */
  async acquire(opts: AcquireOptions = {}): Promise<void> {
    this.#check();
    const { timeoutMs } = opts;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      throw new QcopError('EINVAL', 'timeoutMs must be a non-negative number');
    }
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (;;) {
      const left = deadline === undefined ? SLICE_MS : Math.min(SLICE_MS, Math.max(0, deadline - Date.now()));
      let r: number;
      try {
        r = await native().semAcquire(this.#semid, left);
      } catch (e) {
        if (!this.#entry) throw new QcopError('ECLOSED', `semaphore '${this.key}' was closed`);
        throw QcopError.fromSystem(e, `acquire '${this.key}'`);
      }
      if (r === 0) {
        if (!this.#entry) { native().semOp(this.#semid, 1, 0, false); throw this.#closedError(); }
        held.set(this.#semid, (held.get(this.#semid) ?? 0) + 1);
        return;
      }
      if (!this.#entry) throw this.#closedError();
      if (deadline !== undefined && Date.now() >= deadline) {
        throw new QcopError('ETIMEDOUT', `semaphore '${this.key}' not acquired within ${timeoutMs} ms`);
      }
    }
  }

  /** Takes one unit if one is available now; false otherwise. */
  tryAcquire(): boolean {
    this.#check();
    const ok = sys('semop', (n) => n.semOp(this.#semid, -1, 0, true));
    if (ok) held.set(this.#semid, (held.get(this.#semid) ?? 0) + 1);
    return ok;
  }

  /** Adds `n` units; those this process acquired are released with undo, the rest stay released after it exits. */
  release(n = 1): void {
    this.#check();
    if (!Number.isInteger(n) || n < 1) throw new QcopError('EINVAL', 'release(n) needs a positive integer');
    const mine = Math.min(n, held.get(this.#semid) ?? 0);
    sys('semop', (x) => x.semOp(this.#semid, mine, n - mine, false));
    held.set(this.#semid, (held.get(this.#semid) ?? 0) - mine);
  }

  /** Closes the handle (units it holds stay held until released or exit); the last close removes the semaphore. */
  close(): void {
    const entry = this.#entry;
    if (!entry) throw this.#closedError();
    this.#entry = null;
    if (releaseEntry(entry, 'semaphore', this.#semid)) held.delete(this.#semid);
  }

  #check(): void {
    if (!this.#entry) throw this.#closedError();
  }

  #closedError(): QcopError {
    return new QcopError('ECLOSED', `semaphore '${this.key}' is closed`);
  }
}
