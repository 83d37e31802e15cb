// Client side of a serial line: `connect({ url: 'serial:///dev/ttyUSB0?baud=115200' })` (docs/SERIAL.md §8).
import type { Duplex } from 'node:stream';
import { QcopError } from '../../runtime/index.js';
import { Port, explainOpenError } from './port.js';
import { SerialLine } from './stream.js';

type SerialPortDuplex = Duplex & { isOpen: boolean; open(cb: (err: Error | null) => void): void; close(cb?: (err: Error | null) => void): void; drain(cb: () => void): void };

/** Opens a serial device (serialport loaded on first use); rejects with ENOENT/EBUSY/EACCES/ESYSTEM in words a user acts on. */
export async function openDevice(device: string, baud: number): Promise<SerialPortDuplex> {
  const Ctor = (await Port.load()) as unknown as new (o: object) => SerialPortDuplex;
  const port = new Ctor({ path: device, baudRate: baud, autoOpen: false, lock: true });
  await new Promise<void>((resolve, reject) =>
    port.open((err) => {
      if (!err) return resolve();
      const why = explainOpenError(device, err);
      reject(new QcopError(why.code, why.text, { cause: err }));
    }),
  );
  port.on('error', () => {});
  return port;
}

/** Parses `serial:///dev/pts/7?baud=115200` (or `serial:/dev/pts/7`); `options.baud` is the default speed. */
export function parseSerialUrl(url: string, options: Record<string, unknown> = {}): { device: string; baud: number } {
  const m = /^serial:(?:\/\/)?(\/[^?#]*)(?:\?([^#]*))?$/i.exec(url);
  if (!m) throw new QcopError('EINVAL', `bad serial URL '${url}' (use serial:///dev/ttyUSB0?baud=115200)`);
  const q = new URLSearchParams(m[2] ?? '');
  const baud = Number(q.get('baud') ?? options.baud ?? 115200);
  if (!Number.isInteger(baud) || baud < 50 || baud > 4_000_000) throw new QcopError('EINVAL', `serial baud must be an integer from 50 to 4000000 in '${url}'`);
  return { device: decodeURIComponent(m[1]!), baud };
}

/** Where a dialer goes and how to open one connection (the shape runtime/client/dial.ts expects). */
export function serialTarget(url: string, options: Record<string, unknown> = {}): { where: string; dial(): Promise<Duplex> } {
  const { device, baud } = parseSerialUrl(url, options);
  return {
    where: `serial://${device}`,
    async dial() {
      const port = await openDevice(device, baud);
      const line = new SerialLine(port);
      port.on('data', (chunk: Buffer) => line.input(chunk));
      const s = line.open();
      port.on('close', () => line.down(`${device} closed`));
      // One connection per opening: when it ends, let the last bytes (our END record) out, then close.
      s.on('close', () => {
        if (port.isOpen) port.drain(() => port.close(() => {}));
      });
      return s;
    },
  };
}
