/**
 * Pipelined requests are handled one at a time per client connection
 * (docs/protocol.md §1.8). Node parses every request in a read at once and
 * emits them together, while it writes their answers in order: forwarded
 * concurrently, each answer queued behind an unread one would hold a socket to
 * the app until its idle timeout, and one connection could take the whole pool.
 * Here a request is handled only when its response is the one Node is writing
 * (Node emits `'socket'` on it then), so a connection holds at most one upstream
 * socket, and a parked poll still holds none.
 *
 * At most `maxQueued` requests wait behind the one being answered: when that
 * many wait, reading the connection pauses until one is taken. A request parsed
 * beyond it (from the same read) is answered 429 `PROXY_ERR_TOO_MANY_PIPELINED`
 * with `Connection: close`; the requests in front of it are still answered, the
 * ones after it never are (the connection ends after the refusal).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionWarner } from '../http/connection-warnings.js';
import { requestIdOf } from '../http/request-id.js';
import { sendError } from '../errors.js';
import { clientAddressOf } from './client-address.js';

export interface PipelineGateDeps {
  /** Requests that may wait behind the one being answered on a connection. */
  maxQueued: number;
  trustForwardedFor: boolean;
  warn: ConnectionWarner;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface PipelineGate {
  /** Calls `handle(req, res)` now if `res` is being written, else when its turn comes (or never, if refused or the client leaves). */
  admit(req: IncomingMessage, res: ServerResponse, handle: RequestHandler): void;
  /** The request most recently handed to its handler on `socket` (the one whose answer is being written). */
  current(socket: Socket): IncomingMessage | undefined;
}

interface Connection {
  /** Requests parsed but not yet handled. */
  waiting: number;
  /** True while this gate keeps the socket from reading. */
  paused: boolean;
  /** A request was refused with `Connection: close`: nothing after it is handled. */
  refused: boolean;
  current: IncomingMessage | undefined;
}

export function createPipelineGate({ maxQueued, trustForwardedFor, warn }: PipelineGateDeps): PipelineGate {
  const connections = new WeakMap<Socket, Connection>();

  // Node resumes reading on its own (after a write drains, or when a body is read); keep it paused while the queue
  // is full. One listener function for every connection, not a closure each (memory per parked request, issue 15).
  function keepPaused(this: Socket): void {
    if (connections.get(this)?.paused === true) this.pause();
  }

  function connectionOf(socket: Socket): Connection {
    let conn = connections.get(socket);
    if (conn === undefined) {
      conn = { waiting: 0, paused: false, refused: false, current: undefined };
      connections.set(socket, conn);
      socket.on('resume', keepPaused);
    }
    return conn;
  }

  function run(conn: Connection, req: IncomingMessage, res: ServerResponse, handle: RequestHandler): void {
    conn.current = req;
    handle(req, res);
  }

  function refuse(conn: Connection, req: IncomingMessage, res: ServerResponse): void {
    conn.refused = true;
    warn(
      req.socket,
      { requestId: requestIdOf(req), clientAddress: clientAddressOf(req, trustForwardedFor), maxQueued },
      'too many pipelined requests on one connection; refused and closing it',
    );
    sendError(res, 'PROXY_ERR_TOO_MANY_PIPELINED', `at most ${maxQueued} requests may wait behind the one being answered on a connection`, {
      connection: 'close',
    });
  }

  return {
    admit(req, res, handle) {
      const socket = req.socket;
      const conn = connectionOf(socket);
      if (conn.refused) return; // behind a Connection: close answer: never written, dropped with the socket
      if (res.socket !== null) {
        run(conn, req, res, handle);
        return;
      }
      if (conn.waiting >= maxQueued) {
        refuse(conn, req, res);
        return;
      }
      conn.waiting++;
      if (conn.waiting >= maxQueued && !conn.paused) {
        conn.paused = true;
        socket.pause();
      }
      // Node assigns the socket when every answer in front is written; if the client leaves first, never.
      res.once('socket', () => {
        conn.waiting--;
        if (conn.paused && conn.waiting < maxQueued) {
          conn.paused = false;
          socket.resume();
        }
        run(conn, req, res, handle);
      });
    },
    current: (socket) => connections.get(socket)?.current,
  };
}
