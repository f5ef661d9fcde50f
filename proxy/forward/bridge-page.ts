/**
 * The shard bridge page (docs/protocol.md §11), served by the proxy itself on
 * every accepted host, so a page on `chat.test` can load it in a hidden iframe
 * from `c1.chat.test` and poll through it (the per-host connection limit counts
 * host names). It is served with `Origin-Agent-Cluster: ?0` by default because
 * Chromium only lets two documents share `document.domain` when both opt out of
 * origin-keyed agent clusters; `?1` forces clients onto the postMessage path.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { sendError } from '../errors.js';
import { REQUEST_ID_HEADER, responseRequestId } from '../http/request-id.js';

/** `X-Request-Id` for a client answer (proxy/http/request-id.ts), or nothing. */
function requestIdHeader(res: ServerResponse): Record<string, string> {
  const id = responseRequestId(res);
  return id === undefined ? {} : { [REQUEST_ID_HEADER]: id };
}

export const BRIDGE_PATH = '/bridge.html';

export interface BridgePageOptions {
  /** File to serve. */
  path: string;
  originAgentCluster: '?0' | '?1';
  logger: Logger;
}

/** Returns a handler that answers `GET`/`HEAD /bridge.html` and returns false for anything else. */
export function createBridgePage(options: BridgePageOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  let page: Promise<Buffer> | null = null;
  return (req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== BRIDGE_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    // Read once; a failed read is retried on the next request.
    page ??= readFile(options.path);
    page.then(
      (body) => {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-length': body.length,
          'cache-control': 'no-cache',
          'origin-agent-cluster': options.originAgentCluster,
          'x-content-type-options': 'nosniff',
          ...requestIdHeader(res),
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        page = null;
        options.logger.error({ err, path: options.path }, 'bridge page unreadable');
        sendError(res, 'PROXY_ERR_NOT_FOUND', 'the bridge page is not available');
      },
    );
    return true;
  };
}
