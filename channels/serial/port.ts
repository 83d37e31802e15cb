// The serial device: open it (clear errors when missing or busy), reopen when it comes back, write paced at the baud rate.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { importOptional } from '../shared/optional-package.js';
import type { QcopCode } from '../../runtime/index.js';

type SerialPortLike = EventEmitter & {
  open(cb: (err: Error | null) => void): void;
  write(data: Buffer): boolean;
  close(cb?: (err: Error | null) => void): void;
  isOpen: boolean;
};
type SerialPortCtor = new (o: { path: string; baudRate: number; autoOpen: boolean; lock: boolean }) => SerialPortLike;

export type PortState = 'opening' | 'open' | 'missing' | 'busy' | 'failed' | 'closed';

/** Why a device could not be opened, in words a user acts on. */
export function explainOpenError(device: string, err: Error): { state: PortState; code: QcopCode; text: string } {
  const msg = err.message;
  if (!fs.existsSync(device) || /ENOENT|No such file/.test(msg)) return { state: 'missing', code: 'ENOENT', text: `serial device ${device} does not exist (unplugged?)` };
  if (/lock|EBUSY|EAGAIN|temporarily unavailable/i.test(msg)) return { state: 'busy', code: 'EBUSY', text: `serial device ${device} is in use by another process` };
  if (/EACCES|Permission denied/.test(msg)) return { state: 'failed', code: 'EACCES', text: `no permission to open ${device} (add the user to group dialout?)` };
  return { state: 'failed', code: 'ESYSTEM', text: `cannot open ${device}: ${msg}` };
}

/**
 * One device, kept open: emits 'data', 'open', 'down' (with a reason). Writes go through a
 * token bucket at baud/10 bytes per second, so the bytes waiting are ours, in a bounded queue,
 * and not in a pty or driver buffer of unknown size (a pty ignores the baud rate).
 */
export class Port extends EventEmitter {
  state: PortState = 'opening';
  lastError = '';
  reopens = 0;
  private port: SerialPortLike | null = null;
  private retry: NodeJS.Timeout | null = null;
  private pacer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private queue: Buffer[] = [];
  queuedBytes = 0;
  private budget = 0;
  private lastTick = 0;
  private stopped = false;
  private opened = false;

  constructor(
    private readonly Ctor: SerialPortCtor,
    readonly device: string,
    readonly baud: number,
    private readonly retryMs: number,
  ) {
    super();
  }

  /** Imports serialport; ENOENT with the install command when it is not installed. */
  static async load(): Promise<SerialPortCtor> {
    const mod = (await importOptional('serialport', '13', 'serial', () => import('serialport'))) as unknown as { SerialPort: SerialPortCtor };
    return mod.SerialPort;
  }

  open(): void {
    this.retry = null;
    if (this.stopped) return;
    const p = new this.Ctor({ path: this.device, baudRate: this.baud, autoOpen: false, lock: true });
    p.on('error', (err: Error) => this.down(p, err));
    p.on('close', (err?: Error & { disconnected?: boolean }) => this.down(p, err ?? new Error('device closed')));
    p.on('data', (chunk: Buffer) => this.emit('data', chunk));
    p.open((err) => {
      if (err) {
        const why = explainOpenError(this.device, err);
        const changed = why.text !== this.lastError;
        this.state = why.state;
        this.lastError = why.text;
        this.emit('failed', why, changed);
        this.retry = setTimeout(() => this.open(), this.retryMs);
        return;
      }
      if (this.stopped) return void p.close();
      if (this.opened) this.reopens++;
      this.opened = true;
      this.port = p;
      this.state = 'open';
      this.lastError = '';
      this.lastTick = Date.now();
      this.budget = 0;
      this.emit('open');
      // A pty (and sometimes a USB adapter) can vanish without the read side reporting it:
      // the device node going away is the sign that counts.
      this.watchdog = setInterval(() => {
        if (!fs.existsSync(this.device)) this.down(p, new Error('the device node disappeared'));
      }, 500);
      this.watchdog.unref?.();
      this.pump();
    });
  }

  private down(p: SerialPortLike, err: Error): void {
    if (this.port !== p) return;
    this.port = null;
    if (this.pacer) clearTimeout(this.pacer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.pacer = null;
    this.watchdog = null;
    if (p.isOpen) p.close(() => {});
    if (this.stopped) return;
    this.state = fs.existsSync(this.device) ? 'opening' : 'missing';
    this.lastError = `${this.device}: ${err.message}`;
    this.emit('down', err);
    this.retry = setTimeout(() => this.open(), this.retryMs);
  }

  /** Queues wire bytes; the caller bounds `queuedBytes`. */
  write(wire: Buffer): void {
    this.queue.push(wire);
    this.queuedBytes += wire.length;
    if (!this.pacer && this.port) this.pump();
  }

  private pump(): void {
    this.pacer = null;
    const p = this.port;
    if (!p) return;
    const now = Date.now();
    const rate = this.baud / 10; // 8N1: ten bit times per byte
    this.budget = Math.min(this.budget + ((now - this.lastTick) * rate) / 1000, rate / 20 + 256);
    this.lastTick = now;
    while (this.queue.length > 0 && this.budget >= Math.min(this.queue[0]!.length, rate / 20 + 256)) {
      const wire = this.queue.shift()!;
      this.queuedBytes -= wire.length;
      this.budget -= wire.length;
      p.write(wire);
    }
    if (this.queue.length > 0) this.pacer = setTimeout(() => this.pump(), 10);
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.pacer) clearTimeout(this.pacer);
    if (this.watchdog) clearInterval(this.watchdog);
    const p = this.port;
    this.port = null;
    this.state = 'closed';
    if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
  }
}
