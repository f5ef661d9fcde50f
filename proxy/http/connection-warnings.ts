/**
 * One warn line per client connection at most. A connection that misbehaves
 * (pipelines past the limit, stops reading its answers) does it over and over;
 * one line tells the operator who and when without letting the client fill the
 * log.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

export type ConnectionWarner = (socket: Socket, fields: Record<string, unknown>, msg: string) => void;

export function createConnectionWarner(log: Logger): ConnectionWarner {
  const warned = new WeakSet<Socket>();
  return (socket, fields, msg) => {
    if (warned.has(socket)) return;
    warned.add(socket);
    log.warn(fields, msg);
  };
}
