/**
 * One client request on its way through the proxy: the client's request and
 * response, what a re-ask needs to replay the request (docs/protocol.md §4.1),
 * and the publish sequence captured when it was last sent to the app (§4 step 3).
 */
import type { IncomingMessage } from 'node:http';
import type { ClientRequest, ClientResponse } from '../http/client-message.js';

export interface Exchange {
  readonly req: ClientRequest;
  readonly res: ClientResponse;
  /** Global publish sequence when the request was last sent to the app (first send or latest re-ask). */
  sentSeq: number;
  /** Re-asks so far. */
  reasks: number;
  /** The client's address as the proxy judges it (forward/client-address.ts), for the per-address parking cap. */
  readonly clientAddress?: string;
  /** The request body if it was retained completely, else null (too large, or not fully received). */
  retainedBody(): Buffer | null;
  /** Bytes of the request body once it has fully arrived (0 without one); null while it is still arriving. */
  bodySize(): number | null;
  /**
   * Drops what the first forwarding left on the client request (http-proxy's listeners, which keep its upstream
   * request and response alive) once the app's answer is fully read: a parked request should cost no more than
   * its client socket. Set by the forwarder; a no-op otherwise.
   */
  releaseUpstream: () => void;
}

const NO_BODY = Buffer.alloc(0);

function noUpstream(): void {}

/** The body of a request that has one, as it streams past. */
class BodyTee {
  chunks: Buffer[] = [];
  retained: Buffer | null = null;
  bytes = 0;
  overflowed = false;
  ended = false;
}

/**
 * One object of one shape per exchange, its methods on the prototype: a parked request keeps it, and a leased
 * re-poll makes one per poll (issue 15: closures per exchange were garbage per delivery and memory per parked).
 */
class ClientExchange implements Exchange {
  sentSeq = 0;
  reasks = 0;
  releaseUpstream: () => void = noUpstream;
  constructor(
    readonly req: ClientRequest,
    readonly res: ClientResponse,
    readonly clientAddress: string | undefined,
    /** Null for a request without a body (every poll). */
    private readonly tee: BodyTee | null,
  ) {}

  retainedBody(): Buffer | null {
    if (this.tee === null) return NO_BODY;
    return this.tee.ended ? this.tee.retained : null;
  }

  bodySize(): number | null {
    if (this.tee === null) return 0;
    return this.tee.ended ? this.tee.bytes : null;
  }
}

/** An exchange for a request known to have no body (a leased re-poll, possibly parsed by the client front). */
export function createBodilessExchange(req: ClientRequest, res: ClientResponse, clientAddress?: string): Exchange {
  return new ClientExchange(req, res, clientAddress, null);
}

/**
 * The same exchange on another request and response of the same client request (a held first poll the client
 * front took over from node:http, http/front/front-connection.ts `adopt`): bodiless, its sequence and re-asks kept.
 */
export function moveExchange(from: Exchange, req: ClientRequest, res: ClientResponse): Exchange {
  const moved = new ClientExchange(req, res, from.clientAddress, null);
  moved.sentSeq = from.sentSeq;
  moved.reasks = from.reasks;
  return moved;
}

/**
 * Starts an exchange and tees up to `maxBodyBytes` of the request body as it
 * streams past (to whoever consumes `req`), so the request can be re-asked.
 * Call it in the same tick as the code that pipes `req`, so no chunk is missed.
 */
export function createExchange(req: IncomingMessage, res: ClientResponse, maxBodyBytes: number, clientAddress?: string): Exchange {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return new ClientExchange(req, res, clientAddress, null);
  const tee = new BodyTee();
  const onData = (chunk: Buffer) => {
    tee.bytes += chunk.length; // counted even past the limit: parking needs the size (docs/protocol.md §4 step 4)
    if (tee.overflowed) return;
    if (tee.bytes > maxBodyBytes) {
      // Too large to retain: stop copying, the request can no longer be re-asked.
      tee.overflowed = true;
      tee.chunks = [];
      return;
    }
    tee.chunks.push(chunk);
  };
  req.on('data', onData);
  req.once('end', () => {
    tee.ended = true;
    req.off('data', onData);
    // One exact copy: the chunks are slices of the socket's reads, which they would keep alive while parked.
    if (!tee.overflowed) tee.retained = Buffer.concat(tee.chunks, tee.bytes);
    tee.chunks = [];
  });
  return new ClientExchange(req, res, clientAddress, tee);
}
