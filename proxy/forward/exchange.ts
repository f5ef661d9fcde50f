/**
 * One client request on its way through the proxy: the client's request and
 * response, what a re-ask needs to replay the request (docs/protocol.md §4.1),
 * and the publish sequence captured when it was last sent to the app (§4 step 3).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
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

/**
 * Starts an exchange and tees up to `maxBodyBytes` of the request body as it
 * streams past (to whoever consumes `req`), so the request can be re-asked.
 * Call it in the same tick as the code that pipes `req`, so no chunk is missed.
 */
export function createExchange(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number, clientAddress?: string): Exchange {
  let chunks: Buffer[] = [];
  let retained: Buffer | null = null;
  let bytes = 0;
  let overflowed = false;
  let ended = false;
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody) {
    const onData = (chunk: Buffer) => {
      bytes += chunk.length; // counted even past the limit: parking needs the size (docs/protocol.md §4 step 4)
      if (overflowed) return;
      if (bytes > maxBodyBytes) {
        // Too large to retain: stop copying, the request can no longer be re-asked.
        overflowed = true;
        chunks = [];
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      ended = true;
      req.off('data', onData);
      // One exact copy: the chunks are slices of the socket's reads, which they would keep alive while parked.
      if (!overflowed) retained = Buffer.concat(chunks, bytes);
      chunks = [];
    });
  }
  return {
    req,
    res,
    sentSeq: 0,
    reasks: 0,
    releaseUpstream: () => undefined,
    ...(clientAddress === undefined ? {} : { clientAddress }),
    retainedBody() {
      if (!hasBody) return NO_BODY;
      return ended ? retained : null;
    },
    bodySize() {
      if (!hasBody) return 0;
      return ended ? bytes : null;
    },
  };
}
