/**
 * Forwards client requests to the app with http-proxy (docs/protocol.md §1–§2):
 * client `Grip-*` and forwarding headers stripped, the proxy's own
 * `X-Forwarded-*` (forwarded-headers.ts) and a `Grip-Sig` added,
 * the body teed for re-asks, the answer handed to the shared upstream-response
 * handler. Network failures become 502/504 JSON; a client that went away is
 * not an upstream error (node-http-proxy issue #813).
 */
import type { Agent, IncomingMessage, ServerResponse } from 'node:http';
import httpProxy from 'http-proxy';
import type { GripSigSigner } from '../../protocol/grip-sig.js';
import { GRIP_SIG } from '../../protocol/headers.js';
import { sendError } from '../errors.js';
import { createExchange, type Exchange } from './exchange.js';
import { clientAddressOf } from './client-address.js';
import { forwardedValuesOf, setForwardedHeaders, type ForwardedValues } from './forwarded-headers.js';
import { stripRequestHeaders } from '../http/header-filter.js';
import { takeJsonpRequest } from '../http/jsonp.js';
import type { ProxyOptions } from '../options.js';
import { requestIdOf } from '../http/request-id.js';
import type { Repolls } from '../repoll/repolls.js';
import { isResponseClosed } from '../http/response.js';
import type { UpstreamResponseHandler } from './upstream-response.js';

export interface ForwarderDeps {
  options: Pick<ProxyOptions, 'upstreamUrl' | 'upstreamTimeoutMs' | 'reaskBodyMaxBytes' | 'trustForwardedFor' | 'jsonpCallbackParam' | 'jsonpMode' | 'logger'>;
  /** Keep-alive agent to the app, shared with re-asks. */
  agent: Agent;
  signer: GripSigSigner;
  /** The global publish sequence, captured as each request is sent (race check, docs §4 step 3). */
  publishSeq: () => number;
  handleUpstreamResponse: UpstreamResponseHandler;
  /** Answers re-polls the app leased to the proxy (docs §13); null without a lease key. */
  repolls?: Repolls | null;
}

/** The client server's request handler. */
export type Forwarder = (req: IncomingMessage, res: ServerResponse) => void;

function ignoreError(): void {}

/** `Upgrade: websocket` (any case, possibly among other protocols): a WebSocket handshake. */
function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return upgrade !== undefined && upgrade.split(',').some((p) => p.trim().toLowerCase().startsWith('websocket'));
}

export function createForwarder({ options, agent, signer, publishSeq, handleUpstreamResponse, repolls }: ForwarderDeps): Forwarder {
  const log = options.logger;
  const proxy = httpProxy.createProxyServer({
    target: options.upstreamUrl,
    agent,
    // Off: http-proxy would append to (or keep) the client's X-Forwarded-* values; forward() sets ours.
    xfwd: false,
    selfHandleResponse: true,
    proxyTimeout: options.upstreamTimeoutMs,
  });
  const exchanges = new WeakMap<IncomingMessage, Exchange>();
  const timedOut = new WeakSet<IncomingMessage>();

  // http-proxy aborts the upstream request on proxyTimeout and reports the abort as
  // a plain ECONNRESET; remembering the timeout is how 504 is told from 502.
  // ('proxyReq' is not emitted for `Expect: 100-continue` requests; their timeouts answer 502.)
  proxy.on('proxyReq', (proxyReq, req, res) => {
    proxyReq.once('timeout', () => timedOut.add(req));
    // http-proxy cancels the app's request on the client request's 'aborted'/'error', but
    // Node (>= 16) emits neither for a request already read to its end (every GET poll):
    // it is auto-destroyed before its socket closes. Watch the client response instead.
    if (isResponseClosed(res)) {
      proxyReq.destroy(); // left while waiting for an agent socket
      return;
    }
    const cancel = () => {
      if (!res.writableFinished) proxyReq.destroy();
    };
    res.once('close', cancel);
    // From the response on, pipeline() (pass-through) or the registry (holds) own the client's life.
    proxyReq.once('response', () => res.off('close', cancel));
  });

  proxy.on('proxyRes', (proxyRes, req) => {
    const exchange = exchanges.get(req);
    if (exchange === undefined) {
      proxyRes.resume();
      return;
    }
    void handleUpstreamResponse(exchange, proxyRes);
  });

  // The client went away and http-proxy cancelled the upstream request: expected, not an error.
  proxy.on('econnreset', (err, req) => {
    log.debug({ requestId: requestIdOf(req), url: req.url, code: (err as NodeJS.ErrnoException).code }, 'client went away; upstream request cancelled');
  });

  // Per-request callbacks get every request error; this only guards against
  // http-proxy's rethrow when an 'error' has no listener.
  proxy.on('error', (err) => log.error({ err }, 'http-proxy error'));

  function onProxyError(err: Error, req: IncomingMessage, res: ServerResponse): void {
    const code = (err as NodeJS.ErrnoException).code;
    const requestId = requestIdOf(req);
    if (isResponseClosed(res)) {
      log.debug({ requestId, url: req.url, code }, 'client went away before the app answered');
    } else if (timedOut.has(req)) {
      log.warn({ requestId, url: req.url, timeoutMs: options.upstreamTimeoutMs }, 'app timed out');
      sendError(res, 'PROXY_ERR_UPSTREAM_TIMEOUT', `the app did not answer within ${options.upstreamTimeoutMs} ms`);
    } else {
      log.warn({ requestId, url: req.url, code }, 'app unavailable');
      sendError(res, 'PROXY_ERR_UPSTREAM_UNAVAILABLE', 'the app could not be reached');
    }
  }

  function forward(req: IncomingMessage, res: ServerResponse, token: string, forwarded: ForwardedValues): void {
    if (isResponseClosed(res)) return; // left while the signature was being made
    req.headers[GRIP_SIG] = token;
    // On req.headers, which http-proxy copies to the app's request and every re-ask copies again.
    setForwardedHeaders(req.headers, forwarded);
    // Same tick as proxy.web(), which pipes req: the tee sees every chunk.
    const exchange = createExchange(req, res, options.reaskBodyMaxBytes, forwarded.for);
    exchange.sentSeq = publishSeq();
    exchanges.set(req, exchange);
    const errorListeners = req.listenerCount('error');
    const abortedListeners = req.listenerCount('aborted');
    proxy.web(req, res, {}, (err, errReq, errRes) => onProxyError(err, errReq, errRes as ServerResponse));
    // http-proxy adds these synchronously; each closes over its upstream request, which holds the app's response.
    const added = [
      ...req.listeners('error').slice(errorListeners).map((fn) => ['error', fn] as const),
      ...req.listeners('aborted').slice(abortedListeners).map((fn) => ['aborted', fn] as const),
    ];
    exchange.releaseUpstream = () => {
      for (const [event, fn] of added) req.off(event, fn as (...args: unknown[]) => void);
      added.length = 0;
      // A request error with no listener would be thrown; after the app answered it means nothing more.
      if (req.listenerCount('error') === 0) req.on('error', ignoreError);
    };
  }

  return (req, res) => {
    // Before stripping (Upgrade is hop-by-hop): WebSocket-over-HTTP is not served, so say so rather than let the
    // app answer a handshake it never saw as one (docs/protocol.md §12).
    if (isWebSocketUpgrade(req)) {
      log.info({ requestId: requestIdOf(req), url: req.url?.slice(0, 256) }, 'WebSocket upgrade refused');
      sendError(res, 'PROXY_ERR_UPGRADE_UNSUPPORTED', 'WebSocket is not served here: use long-polling (WebSocket-over-HTTP is not implemented)');
      return;
    }
    if (options.jsonpCallbackParam !== undefined) {
      const jsonp = takeJsonpRequest(req, res, options.jsonpCallbackParam, options.jsonpMode);
      if (jsonp.kind === 'bad') {
        log.info({ requestId: requestIdOf(req), url: req.url?.slice(0, 256) }, 'JSON-P callback refused');
        sendError(res, 'PROXY_ERR_BAD_CALLBACK', jsonp.message);
        return;
      }
    }
    // Before stripping: with trustForwardedFor the load balancer's values come from headers stripped below.
    // Without it they are the proxy's own, read only if the request goes to the app (a leased re-poll needs the
    // client's address alone: no values object per re-poll, issue 15).
    const trusted = options.trustForwardedFor ? forwardedValuesOf(req, true) : null;
    const forged = stripRequestHeaders(req.headers);
    if (forged > 0) log.debug({ url: req.url, count: forged }, 'client sent Grip-* or forwarding headers; removed');
    if (repolls && repolls.tryAnswer(req, res, trusted?.for ?? clientAddressOf(req, false))) return;
    const forwarded = trusted ?? forwardedValuesOf(req, false);
    const token = signer.peek();
    if (token !== null) {
      forward(req, res, token, forwarded);
      return;
    }
    signer.get().then(
      (fresh) => forward(req, res, fresh, forwarded),
      (err: unknown) => {
        log.error({ err, requestId: requestIdOf(req) }, 'could not sign Grip-Sig');
        sendError(res, 'PROXY_ERR_UPSTREAM_UNAVAILABLE', 'the proxy could not sign the request');
      },
    );
  };
}
