/**
 * Re-asks the app (docs/protocol.md §4.1): the client's original request sent
 * again with a fresh `Grip-Sig` and Pushpin's `Grip-Last` header, its answer
 * handled by the same function as a first answer. A plain `http.request` on
 * the shared keep-alive agent: there is no client stream to pipe any more.
 */
import { request, type Agent } from 'node:http';
import { formatGripLast } from '../../protocol/grip-channel.js';
import type { GripSigSigner } from '../../protocol/grip-sig.js';
import { GRIP_LAST, GRIP_SIG } from '../../protocol/headers.js';
import { endToEndHeaders } from '../http/header-filter.js';
import type { ReaskFn } from '../holds/hold-registry.js';
import type { ProxyOptions } from '../options.js';
import { requestIdOf } from '../http/request-id.js';
import { isResponseClosed } from '../http/response.js';
import type { UpstreamResponseHandler } from './upstream-response.js';

export interface ReaskDeps {
  options: Pick<ProxyOptions, 'upstreamUrl' | 'upstreamTimeoutMs' | 'logger'>;
  agent: Agent;
  signer: GripSigSigner;
  publishSeq: () => number;
  handleUpstreamResponse: UpstreamResponseHandler;
}

export function createReasker({ options, agent, signer, publishSeq, handleUpstreamResponse }: ReaskDeps): ReaskFn {
  const log = options.logger;
  const target = new URL(options.upstreamUrl);
  // Same path rule as http-proxy's prependPath: the upstream URL's path prefixes the client's.
  const prefix = target.pathname.replace(/\/$/, '');

  return async (exchange, lastIds) => {
    const { req, res } = exchange;
    const body = exchange.retainedBody();
    if (body === null) {
      log.warn({ requestId: requestIdOf(req), url: req.url }, 'cannot re-ask: the request body was not retained');
      return 'failed';
    }
    const token = signer.peek() ?? (await signer.get());
    if (isResponseClosed(res)) return 'dispatched'; // nobody left to answer

    // The client's headers as forwarded the first time (including X-Forwarded-*), minus Grip-* and framing.
    const headers = endToEndHeaders(req.headers, { dropLength: true });
    headers[GRIP_SIG] = token;
    if (lastIds.size > 0) headers[GRIP_LAST] = formatGripLast(lastIds);
    if (body.length > 0 || req.headers['content-length'] !== undefined) headers['content-length'] = String(body.length);

    return new Promise((resolve) => {
      exchange.sentSeq = publishSeq();
      const upstreamReq = request({
        host: target.hostname,
        port: target.port || 80,
        method: req.method,
        path: prefix + (req.url ?? '/'),
        headers,
        agent,
        timeout: options.upstreamTimeoutMs,
      });
      // The client left: stop the re-ask; the registry has already let go of it.
      const onClientClose = () => upstreamReq.destroy();
      res.once('close', onClientClose);

      upstreamReq.once('timeout', () => upstreamReq.destroy(new Error('re-ask timed out')));
      upstreamReq.once('error', (err) => {
        res.off('close', onClientClose);
        if (isResponseClosed(res)) {
          resolve('dispatched');
        } else {
          log.warn({ requestId: requestIdOf(req), url: req.url, err: err.message }, 're-ask failed');
          resolve('failed');
        }
      });
      upstreamReq.once('response', (upstreamRes) => {
        res.off('close', onClientClose);
        void handleUpstreamResponse(exchange, upstreamRes).then(() => resolve('dispatched'));
      });
      upstreamReq.end(body);
    });
  };
}
