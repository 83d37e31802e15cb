// A connected pair of in-memory streams, so a client can talk to a broker in the same process.
import { Duplex } from 'node:stream';

/** Two Duplex streams: what one writes, the other reads. */
export function duplexPair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  const make = (peer: () => Duplex) =>
    new Duplex({
      // Ending one side ends the other: close() must not wait for a half-open stream.
      allowHalfOpen: false,
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      writev(chunks: Array<{ chunk: Buffer }>, cb) {
        for (const { chunk } of chunks) peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.destroyed) p.destroy();
        cb(err);
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}
