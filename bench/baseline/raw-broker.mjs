#!/usr/bin/env node
// raw-broker: the benchmark's baseline, a minimal Unix-socket broker forwarding frames by channel, no features.
// Usage: node bench/baseline/raw-broker.mjs SOCKET_PATH
// No handshake, no names check, no queue limit, no patterns, no counters: subscribe and forward.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { OP_PUB, OP_SUB, OP_SUBACK, channelOf, frame, frameReader, opOf } from './raw-wire.mjs';

const socketPath = process.argv[2];
if (!socketPath) {
  process.stderr.write('usage: raw-broker.mjs SOCKET_PATH\n');
  process.exit(2);
}

/** channel → sockets subscribed to it */
const subs = new Map();
/** sockets written to while handling one chunk: uncorked together at its end, one writev each */
const corked = new Set();

function subscribe(sock, channel) {
  let set = subs.get(channel);
  if (!set) subs.set(channel, (set = new Set()));
  set.add(sock);
  sock.write(frame(OP_SUBACK, channel));
}

function forward(f) {
  const set = subs.get(channelOf(f));
  if (!set) return;
  for (const s of set) {
    if (!corked.has(s)) {
      s.cork();
      corked.add(s);
    }
    s.write(f);
  }
}

const server = net.createServer((sock) => {
  const mine = new Set();
  const read = frameReader((f) => {
    const op = opOf(f);
    if (op === OP_PUB) forward(f);
    else if (op === OP_SUB) {
      const ch = channelOf(f);
      mine.add(ch);
      subscribe(sock, ch);
    }
  });
  sock.on('data', (chunk) => {
    try {
      read(chunk);
    } catch {
      sock.destroy();
    }
    for (const s of corked) s.uncork();
    corked.clear();
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    for (const ch of mine) {
      const set = subs.get(ch);
      set?.delete(sock);
      if (set && set.size === 0) subs.delete(ch);
    }
  });
});

try {
  fs.unlinkSync(socketPath);
} catch {}
server.listen(socketPath);
const stop = () => {
  server.close();
  try {
    fs.unlinkSync(socketPath);
  } catch {}
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
