// The data of a message on qcop/dead-letter: a CBOR map naming where it came from, the original data embedded as they were.
import type { StoredMsg } from './store.js';

function text(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([head(3, b.length), b]);
}

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 256) return Buffer.from([(major << 5) | 24, n]);
  if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

/** `{ channel, message, deliveries, seq, data }`; `data` is the original CBOR item (absent when it had none). */
export function deadLetterData(m: StoredMsg): Buffer {
  const parts = [text('channel'), text(m.channel), text('message'), text(m.message), text('deliveries'), head(0, m.deliveries), text('seq'), head(0, m.seq % 0x1_0000_0000)];
  let n = 4;
  if (m.data.length > 0) {
    parts.push(text('data'), m.data);
    n++;
  }
  return Buffer.concat([head(5, n), ...parts]);
}
