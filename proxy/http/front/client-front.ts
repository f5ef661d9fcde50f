/**
 * The client port's front (issue 15): a `net.Server` that owns every client connection and serves the requests
 * it can without Node's per-request machinery (leased re-polls, docs/protocol.md §13, and their parked
 * answers), handing everything else, byte for byte, to the proxy's http.Server through a per-connection bridge
 * (node-bridge.ts). The http.Server keeps its options and handlers; it no longer listens, it is fed.
 *
 * Why: a re-poll cycle through node:http costs about twice the CPU of writing the same answer to the socket
 * (IncomingMessage, ServerResponse, parser callbacks: ~29% of the delivery window, GC on top), and a bare
 * node:http loop was already at ~2.9x Nchan's CPU per delivery. `clientFront: false` keeps the plain server.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { FrontConnection, type FrontContext } from './front-connection.js';
import type { FrontRequest } from './front-request.js';
import type { FrontResponse } from './front-response.js';
import { NodeBridge } from './node-bridge.js';
import type { ProxyTimers } from '../../options.js';

export interface ClientFrontDeps {
  /** The proxy's client http.Server, fed the requests the front does not serve (never listening itself). */
  server: Server;
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** The proxy's timers: the connections' idle and head timeouts run on them. */
  timers: ProxyTimers;
  mayServe(method: string, url: string): boolean;
  serve(req: FrontRequest, res: FrontResponse): boolean;
  releasePipelined(res: FrontResponse): void;
  answered(req: FrontRequest, res: FrontResponse): void;
  writeFilled(socket: Socket): void;
}

export class ClientFront implements FrontContext {
  /** The listening server (same host, port and backlog the http.Server had). */
  readonly listener: NetServer;
  readonly server: Server;
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly timers: ProxyTimers;
  closing = false;
  private readonly connections = new Set<FrontConnection>();

  constructor(private readonly deps: ClientFrontDeps) {
    this.server = deps.server;
    this.maxHeaderBytes = deps.maxHeaderBytes;
    this.headersTimeoutMs = deps.headersTimeoutMs;
    this.keepAliveTimeoutMs = deps.keepAliveTimeoutMs;
    this.timers = deps.timers;
    // As node:http's own: half-open allowed (the front decides when to end), no Nagle delay.
    this.listener = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      this.connections.add(new FrontConnection(socket, this));
    });
    // Node's answers on a bridge are counted per connection: a fast request waits until Node owes nothing.
    deps.server.on('request', (req, res) => {
      const socket: unknown = req.socket;
      if (!(socket instanceof NodeBridge)) return;
      const conn = socket.owner as FrontConnection;
      res.on('close', () => conn.nodeRequestClosed(socket));
    });
  }

  /**
   * A held request Node parsed, moved to the front when its connection allows it (FrontConnection.adopt), or
   * null: Node keeps it.
   */
  adopt(req: IncomingMessage, res: ServerResponse): { req: FrontRequest; res: FrontResponse } | null {
    const socket: unknown = req.socket;
    if (!(socket instanceof NodeBridge)) return null;
    return (socket.owner as FrontConnection).adopt(req, res);
  }

  /** Client connections open now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  listen(port: number, host: string, backlog?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen({ port, host, ...(backlog === undefined ? {} : { backlog }) }, () => {
        this.listener.off('error', reject);
        // What starts node:http's connection tracking (its headers/request timeouts, closeIdleConnections) on
        // a server that is fed connections instead of listening.
        this.server.emit('listening');
        resolve();
      });
    });
  }

  /** Stops accepting; idle connections end now, busy ones after their answers (`Connection: close`). */
  close(): Promise<void> {
    this.closing = true;
    if (!this.listener.listening) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    // Clears Node's connection checks and closes bridges idle between requests.
    this.server.close(() => undefined);
    for (const conn of [...this.connections]) conn.shutDown();
    return closed;
  }

  mayServe(method: string, url: string): boolean {
    return this.deps.mayServe(method, url);
  }

  serve(req: FrontRequest, res: FrontResponse): boolean {
    return this.deps.serve(req, res);
  }

  releasePipelined(res: FrontResponse): void {
    this.deps.releasePipelined(res);
  }

  answered(req: FrontRequest, res: FrontResponse): void {
    this.deps.answered(req, res);
  }

  writeFilled(socket: Socket): void {
    this.deps.writeFilled(socket);
  }

  closed(conn: FrontConnection): void {
    this.connections.delete(conn);
  }
}
