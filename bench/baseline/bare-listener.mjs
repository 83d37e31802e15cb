#!/usr/bin/env node
// The footprint reference of S4: a bare node process holding one listening Unix socket, nothing else.
import * as net from 'node:net';

const socketPath = process.argv[2];
const server = net.createServer((s) => s.destroy()).listen(socketPath);
const stop = () => {
  server.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
