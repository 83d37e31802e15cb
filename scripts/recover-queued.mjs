#!/usr/bin/env node
// Reads a qcop durable store (docs/DURABLE.md §3) without the broker: prints every stored message
// not yet consumed, in order, as JSON lines {seq, channel, message, deliveries, data (base64 CBOR)},
// then the retained values {retained: channel, message, data}. Usage: recover-queued.mjs STATE_DIR
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

const dir = process.argv[2] ?? '/var/lib/qcop';
const crc32 = (b) => (zlib.crc32 ? zlib.crc32(b) : table(b));
function table(b) {
  let c = 0xffffffff;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
const seqAt = (b, at) => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 2 ** 32;
const msgs = new Map();
const retained = new Map();
for (const name of fs.readdirSync(dir).filter((n) => /^\d{10}\.qlog$/.test(n)).sort()) {
  const buf = fs.readFileSync(path.join(dir, name));
  if (buf.toString('latin1', 0, 8) !== 'QCOPLOG1') continue;
  for (let at = 8; at + 8 <= buf.length; ) {
    const len = buf.readUInt32LE(at);
    const body = buf.subarray(at + 8, at + 8 + len);
    if (body.length !== len || crc32(body) !== buf.readUInt32LE(at + 4)) {
      process.stderr.write(`${name}: torn or corrupt record at ${at}; the rest of this file is skipped\n`);
      break;
    }
    at += 8 + len;
    const type = body[0];
    if (type === 1) {
      const ch = 12 + body[10];
      const end = ch + body[11];
      msgs.set(seqAt(body, 1), { seq: seqAt(body, 1), channel: body.toString('utf8', 12, ch), message: body.toString('utf8', ch, end), deliveries: body[9], data: body.subarray(end).toString('base64') });
    } else if (type === 2) msgs.delete(seqAt(body, 1));
    else if (type === 3 && msgs.has(seqAt(body, 1))) msgs.get(seqAt(body, 1)).deliveries = body[9];
    else if (type === 4) {
      const ch = 3 + body[1];
      const end = ch + body[2];
      retained.set(body.toString('utf8', 3, ch), { message: body.toString('utf8', ch, end), data: body.subarray(end).toString('base64') });
    } else if (type === 5) retained.delete(body.toString('utf8', 2));
  }
}
for (const m of [...msgs.values()].sort((a, b) => a.seq - b.seq)) console.log(JSON.stringify(m));
for (const [channel, v] of retained) console.log(JSON.stringify({ retained: channel, ...v }));
