// A raw protocol peer for tests: writes hand-made frames, reads the broker's frames back.
import * as net from 'node:net';
import { Kind, PROTOCOL_VERSION } from '../../runtime/protocol/constants.js';
import { encodeControl } from '../../runtime/protocol/control.js';
import { encodeFrame, type Frame } from '../../runtime/protocol/frame.js';
import { FrameParser } from '../../runtime/protocol/parser.js';

export class RawPeer {
  readonly frames: Frame[] = [];
  closed = false;
  private constructor(readonly socket: net.Socket) {
    const parser = new FrameParser(1 << 30);
    socket.on('data', (d) => parser.push(d, (f) => this.frames.push({ ...f, raw: Buffer.from(f.raw) })));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async open(path: string, hello = true): Promise<RawPeer> {
    const s = net.createConnection(path);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    const peer = new RawPeer(s);
    if (hello) {
      peer.write(encodeFrame(Kind.Hello, 0, process.pid, PROTOCOL_VERSION, '', 'raw', encodeControl({ features: [] })));
      await peer.next((f) => f.kind === Kind.Welcome);
    }
    return peer;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  async next(pred: (f: Frame) => boolean, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no matching frame in ${timeoutMs} ms (closed: ${this.closed})`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The code of the next error frame. */
  async errorCode(timeoutMs?: number): Promise<{ code: string; id: number; text: string }> {
    const f = await this.next((x) => x.kind === Kind.Error, timeoutMs);
    return { code: f.raw.subarray(f.channelEnd, f.messageEnd).toString(), id: f.id, text: f.raw.subarray(f.messageEnd).toString() };
  }

  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A frame with arbitrary raw name bytes (for invalid UTF-8 and NUL). */
export function frameWithRawNames(kind: number, id: number, channel: Buffer, message: Buffer, payload = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(16);
  const total = 16 + channel.length + message.length + payload.length;
  head.writeUInt32LE(total, 0);
  head[4] = kind;
  head[6] = channel.length;
  head[7] = message.length;
  head.writeUInt32LE(id, 8);
  return Buffer.concat([head, channel, message, payload]);
}
