/**
 * The server side of bench/tools/net-floor.ts: the least a Node process can do per long-poll delivery through
 * Node's public socket API. No HTTP parsing, no routing, no per-request object: a connection whose last bytes end
 * a request head (`\r\n\r\n`) is parked in a Set; a `publish` (IPC) writes one prepared response Buffer to every
 * parked socket and empties the Set. Loopback only; argv: the port to listen on (0: any), the response body size.
 */
import { createServer } from 'node:net';

const port = Number(process.argv[2] ?? 0);
const bodyBytes = Number(process.argv[3] ?? 300);
const body = '{"events":[' + '"x"'.padEnd(Math.max(3, bodyBytes - 14), 'x') + ']}';
const head =
  'HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n' +
  'X-Content-Type-Options: nosniff\r\nx-request-id: 0123456789abcdef0123\r\n' +
  `content-length: ${Buffer.byteLength(body)}\r\nDate: ${new Date().toUTCString()}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n`;
const RESPONSE = Buffer.from(head + body, 'latin1');

/** Sockets whose latest request waits for the next publish. */
const parked = new Set();
const server = createServer({ noDelay: true }, (socket) => {
  socket.on('data', (chunk) => {
    const n = chunk.length;
    // A request ends its chunk (the clients send one at a time): park the connection.
    if (n >= 4 && chunk[n - 4] === 13 && chunk[n - 3] === 10 && chunk[n - 2] === 13 && chunk[n - 1] === 10) parked.add(socket);
  });
  socket.on('error', () => socket.destroy());
  socket.on('close', () => parked.delete(socket));
});
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  process.send({ type: 'listening', port: server.address().port, responseBytes: RESPONSE.length });
});
process.on('message', (message) => {
  if (message.type === 'publish') {
    for (const socket of parked) socket.write(RESPONSE);
    parked.clear();
  } else if (message.type === 'parked') {
    process.send({ type: 'parked', id: message.id, parked: parked.size });
  } else if (message.type === 'stop') {
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
