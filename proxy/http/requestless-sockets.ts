/**
 * Shutdown help for a node:http server. `server.closeIdleConnections()` closes
 * keep-alive connections that sit between two requests, but not a connection
 * that has not sent a complete request head yet: a browser's speculative
 * preconnect, or a client still trickling its head. `server.close()` then waits
 * for it until the client gives up or `headersTimeout` expires (60 s by
 * default), and a SIGTERMed proxy outlives the grace period of its supervisor.
 * This tracks the responses each connection still owes, so shutdown can close
 * every connection that owes nobody an answer.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Starts tracking `server`'s connections; returns a function that destroys every
 * connection with no response pending (its own count: how many it closed).
 * Connections with a request being answered are left to finish.
 */
export function trackRequestlessSockets(server: Server): () => number {
  const unanswered = new Map<Socket, number>();
  // One listener function for every response, not a closure per request (issue 15: garbage per delivery).
  // 'close' follows both a finished response and an aborted one, and comes once (`on` spares `once`'s wrapper).
  function answered(this: ServerResponse): void {
    const socket = this.req.socket;
    const count = unanswered.get(socket);
    if (count !== undefined) unanswered.set(socket, count - 1);
  }
  server.on('connection', (socket: Socket) => {
    unanswered.set(socket, 0);
    socket.once('close', () => unanswered.delete(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const count = unanswered.get(req.socket);
    if (count === undefined) return; // closed already
    unanswered.set(req.socket, count + 1);
    res.on('close', answered);
  });
  return () => {
    let closed = 0;
    for (const [socket, count] of unanswered) {
      if (count > 0) continue;
      socket.destroy();
      closed++;
    }
    return closed;
  };
}
