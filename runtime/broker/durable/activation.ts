// Activation (SPEC §10): a program started for a channel nobody listens to; who waits for it, and EACTIVATION when it fails.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { DEFAULT_CALL_TIMEOUT_MS, Flag, Kind, MAX_CALL_TIMEOUT_MS } from '../../protocol/constants.js';
import type { Frame } from '../../protocol/frame.js';
import type { BrokerCore } from '../broker.js';
import type { Connection } from '../connection.js';
import { dispatch } from '../handlers.js';
import { launch } from './launch.js';
import { ServiceTable, type Service } from './services.js';
import { StderrTail } from './stderr-tail.js';

/** After a failed start, the same service is not started again for this long; calls meanwhile get the failure at once. */
export const RETRY_AFTER_MS = 1000;

export interface ActivationOptions {
  servicesDir?: string;
  activationTimeoutMs: number;
  maxActivationChannels: number;
  maxActivationWaiting: number;
}

/** A frame waiting for a program: a call, a deliver, or a send of a channel that is not queued. */
interface Parked {
  c: Connection;
  f: Frame;
  channel: string;
  since: number;
  timer: NodeJS.Timeout | null;
}

interface Run {
  service: Service;
  channel: string;
  child: ChildProcess | null;
  stderr: StderrTail;
  timer: NodeJS.Timeout | null;
  waiting: Parked[];
  registered: boolean;
}

interface Failure {
  service: string;
  channel: string;
  at: string;
  reason: string;
  status?: number;
  signal?: string;
  stderr: string;
}

export class Activation {
  private readonly services: ServiceTable;
  private readonly runs = new Map<Service['file'], Run>();
  private readonly failedAt = new Map<Service['file'], { at: number; text: string }>();
  private waitingCount = 0;
  private started = 0;
  private failed = 0;
  private lastFailure: Failure | null = null;

  constructor(private readonly b: BrokerCore, private readonly o: ActivationOptions) {
    const dir = o.servicesDir ?? (fs.existsSync('/etc/qcop/services.d') ? '/etc/qcop/services.d' : null);
    this.services = new ServiceTable(dir, (level, text) => b.log(level, text));
    this.services.refresh();
  }

  /**
   * A message or call on `channel` that nobody listens to: when a service covers it, the frame
   * waits for its program (started if needed). Returns false when no service covers it.
   */
  park(c: Connection, f: Frame, channel: string): boolean {
    const s = this.services.find(channel);
    if (!s) return false;
    const recent = this.failedAt.get(s.file);
    const answers = f.kind === Kind.Call || (f.flags & Flag.WantCount) !== 0;
    const unsent = { c, f, channel, since: 0, timer: null };
    if (recent && Date.now() - recent.at < RETRY_AFTER_MS && !this.runs.has(s.file)) {
      this.drop(unsent);
      if (answers) c.error('EACTIVATION', recent.text, f.id, f.kind, channel);
      return true;
    }
    if (this.waitingCount >= this.o.maxActivationWaiting) {
      this.drop(unsent);
      if (answers) c.error('ELIMIT', `more than ${this.o.maxActivationWaiting} messages and calls wait for started programs`, f.id, f.kind, channel);
      return true;
    }
    const run = this.runs.get(s.file) ?? this.start(s, channel, c, f);
    if (!run) {
      this.drop(unsent);
      return true;
    }
    if (run.registered) {
      // Its program runs but listens no more: wait for it to listen again, as long as for a start.
      run.registered = false;
      run.channel = channel;
      this.arm(run);
    }
    // The frame is kept as it came: it is dispatched again once the program listens.
    const p: Parked = { c, f: { ...f, raw: Buffer.from(f.raw) }, channel, since: Date.now(), timer: null };
    if (f.kind === Kind.Call) {
      const timeout = Math.min(f.aux === 0 ? DEFAULT_CALL_TIMEOUT_MS : f.aux, MAX_CALL_TIMEOUT_MS);
      p.timer = setTimeout(() => {
        if (!this.unpark(run, p)) return;
        this.drop(p);
        c.error('ETIMEDOUT', `no reply on ${channel} in time: its program (${s.file}) did not listen yet`, f.id, f.kind, channel);
      }, timeout);
      p.timer.unref?.();
    }
    run.waiting.push(p);
    this.waitingCount++;
    return true;
  }

  /** Messages wait on a queued channel nobody listens to: its service is started (they stay stored). */
  wanted(channel: string): void {
    const s = this.services.find(channel);
    if (!s || this.runs.has(s.file)) return;
    const recent = this.failedAt.get(s.file);
    if (recent && Date.now() - recent.at < RETRY_AFTER_MS) return;
    this.start(s, channel, null, null);
  }

  /** A listener registered `name`: programs waited for on channels it covers are there. */
  registered(_name: string): void {
    for (const run of [...this.runs.values()]) {
      if (run.registered) continue;
      const chans = new Set([run.channel, ...run.waiting.map((p) => p.channel)]);
      if (![...chans].some((ch) => this.b.access.filter(this.b.registry.route(ch), ch).length > 0)) continue;
      run.registered = true;
      if (run.timer) clearTimeout(run.timer);
      run.timer = null;
      const waiting = run.waiting;
      run.waiting = [];
      this.waitingCount -= waiting.length;
      // Dispatched after this listen is answered, in the order they came.
      setImmediate(() => {
        for (const p of waiting) {
          if (p.timer) clearTimeout(p.timer);
          if (p.c.state !== 'open') continue;
          if (p.f.kind === Kind.Call) {
            const timeout = Math.min(p.f.aux === 0 ? DEFAULT_CALL_TIMEOUT_MS : p.f.aux, MAX_CALL_TIMEOUT_MS);
            p.f.raw.writeUInt32LE(Math.max(1, timeout - (Date.now() - p.since)), 12);
            p.f = { ...p.f, aux: p.f.raw.readUInt32LE(12) };
          }
          const before = this.b.sender;
          this.b.sender = p.c;
          try {
            dispatch(this.b, p.c, p.f);
          } finally {
            this.b.sender = before;
          }
        }
      });
    }
  }

  /** A connection is gone: its frames waiting for programs are forgotten. */
  closed(c: Connection): void {
    for (const run of this.runs.values()) {
      const keep = run.waiting.filter((p) => p.c !== c);
      for (const p of run.waiting) if (p.c === c && p.timer) clearTimeout(p.timer);
      this.waitingCount -= run.waiting.length - keep.length;
      run.waiting = keep;
    }
  }

  stats(): Record<string, unknown> {
    return {
      services: this.services.size,
      running: this.runs.size,
      waiting: this.waitingCount,
      started: this.started,
      failed: this.failed,
      lastFailure: this.lastFailure,
    };
  }

  close(): void {
    for (const run of this.runs.values()) {
      if (run.timer) clearTimeout(run.timer);
      for (const p of run.waiting) if (p.timer) clearTimeout(p.timer);
    }
  }

  /** A waiting frame that will not be routed: a shared-memory slot it names goes back to its sender. */
  private drop(p: Parked): void {
    if (p.f.flags & Flag.Shm) this.b.shm.unrouted(p.c, p.f);
  }

  private unpark(run: Run, p: Parked): boolean {
    const i = run.waiting.indexOf(p);
    if (i < 0) return false;
    run.waiting.splice(i, 1);
    this.waitingCount--;
    return true;
  }

  /** Starts `s`'s program; null (the frame answered) when it cannot. */
  private start(s: Service, channel: string, c: Connection | null, f: Frame | null): Run | null {
    if (this.runs.size >= this.o.maxActivationChannels) {
      if (c && f && (f.kind === Kind.Call || f.flags & Flag.WantCount)) c.error('ELIMIT', `more than ${this.o.maxActivationChannels} programs are being started`, f.id, f.kind, channel);
      return null;
    }
    const run: Run = { service: s, channel, child: null, stderr: new StderrTail(), timer: null, waiting: [], registered: false };
    this.runs.set(s.file, run);
    this.started++;
    this.b.log('info', `starting ${s.unit ? `unit ${s.unit}` : s.command!.join(' ')} for ${channel} (${s.file})`);
    try {
      const child = launch(s, this.b.socketPath, channel);
      run.child = child;
      child.stderr!.on('data', (d: Buffer) => {
        run.stderr.add(d);
        process.stderr.write(d);
      });
      child.on('error', (err) => this.fail(run, { reason: `cannot start it: ${err.message}` }));
      child.on('exit', (code, signal) => {
        // stderr may still hold its last lines: read them before reporting.
        const report = () => this.exited(run, code, signal);
        if (child.stderr && !child.stderr.readableEnded) {
          const t = setTimeout(report, 200);
          child.stderr.once('end', () => {
            clearTimeout(t);
            report();
          });
        } else report();
      });
    } catch (err) {
      queueMicrotask(() => this.fail(run, { reason: `cannot start it: ${(err as Error).message}` }));
      return run;
    }
    this.arm(run);
    return run;
  }

  /** The program has activationTimeoutMs to listen; then it fails and is asked to stop. */
  private arm(run: Run): void {
    if (run.timer) clearTimeout(run.timer);
    run.timer = setTimeout(() => {
      run.timer = null;
      this.fail(run, { reason: `it did not listen on ${run.channel} within ${this.o.activationTimeoutMs} ms (activationTimeoutMs)` });
      try {
        run.child?.kill('SIGTERM');
      } catch {
        // gone
      }
    }, this.o.activationTimeoutMs);
    run.timer.unref?.();
  }

  private exited(run: Run, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.runs.get(run.service.file) !== run) return;
    if (run.registered) {
      this.runs.delete(run.service.file);
      return;
    }
    // A unit's systemctl, or a program that forks and exits 0, is not a failure: the wait goes on.
    if (code === 0 && !signal) {
      run.child = null;
      return;
    }
    this.fail(run, signal ? { reason: `it was killed by signal ${signal}`, signal } : { reason: `it exited with status ${code}`, status: code ?? -1 });
  }

  private fail(run: Run, why: { reason: string; status?: number; signal?: string }): void {
    if (this.runs.get(run.service.file) !== run) return;
    this.runs.delete(run.service.file);
    if (run.timer) clearTimeout(run.timer);
    const s = run.service;
    const stderr = run.stderr.lines();
    const what = s.unit ? `unit ${s.unit}` : `program ${s.command!.join(' ')}`;
    const text = `${what} for ${run.channel} (${s.file}): ${why.reason}${stderr ? `; its last stderr lines:\n${stderr}` : ''}`;
    this.failed++;
    this.lastFailure = { service: s.file, channel: run.channel, at: new Date().toISOString(), ...why, stderr };
    this.failedAt.set(s.file, { at: Date.now(), text });
    this.b.log('warn', `activation failed: ${text}`);
    for (const p of run.waiting) {
      if (p.timer) clearTimeout(p.timer);
      this.drop(p);
      if (p.f.kind === Kind.Call || p.f.flags & Flag.WantCount) p.c.error('EACTIVATION', text, p.f.id, p.f.kind, p.channel);
    }
    this.waitingCount -= run.waiting.length;
    run.waiting = [];
  }
}
