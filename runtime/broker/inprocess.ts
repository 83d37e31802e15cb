// A connected pair of in-memory streams, so a client can talk to a broker in the same process.
import { Duplex } from 'node:stream';

/** The most one 'data' event carries, like one read of a socket. */
const PIECE = 64 * 1024;

/**
 * Two Duplex streams: what one writes, the other reads. A write is called back only once the
 * reading side has room (its buffer under its high-water mark, or it asks for more), as a socket
 * would: a reader paused by the broker's backpressure holds its writer back, and the bytes between
 * them stay bounded by the reader's high-water mark plus one write.
 */
export function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  // The write of each side waiting for its peer to read: index = the writing side.
  const waiting: Array<(() => void) | null> = [null, null];
  const make = (me: number) => {
    const peer = () => sides[1 - me]!;
    const deliver = (chunks: Buffer[], cb: (err?: Error | null) => void) => {
      let room = true;
      // In pieces of at most a socket read, so a reader the broker pauses stops within one piece.
      for (const chunk of chunks) {
        for (let at = 0; at < chunk.length; at += PIECE) room = peer().push(at === 0 && chunk.length <= PIECE ? chunk : chunk.subarray(at, at + PIECE));
      }
      if (room) cb();
      else waiting[me] = () => cb();
    };
    return new Duplex({
      // Ending one side ends the other: close() must not wait for a half-open stream.
      allowHalfOpen: false,
      read() {
        // This side wants more: the peer's held write may go on.
        const cb = waiting[1 - me];
        waiting[1 - me] = null;
        cb?.();
      },
      write(chunk: Buffer, _enc, cb) {
        deliver([chunk], cb);
      },
      writev(chunks: Array<{ chunk: Buffer }>, cb) {
        deliver(chunks.map((c) => c.chunk), cb);
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.destroyed) p.destroy();
        // A write held for a reader that is gone is called back (the stream is destroyed anyway).
        const held = waiting[me];
        waiting[me] = null;
        held?.();
        cb(err);
      },
    });
  };
  sides.push(make(0), make(1));
  return [sides[0]!, sides[1]!];
}
