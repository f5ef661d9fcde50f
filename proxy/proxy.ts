/**
 * `createHoldProxy` wires the parts together and returns them unstarted: a
 * client server that forwards to the app and parks held requests, a control
 * server for publishers, and the hold registry between them. `listen()` opens
 * the ports; `close()` drains parked requests and releases every socket and
 * timer, so the process can exit.
 */
import { Agent, createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { answerClientErrors, httpServerOptions, type ClientErrorCodes } from '../common/http-limits.js';
import { isLoopbackHost } from '../common/net-address.js';
import type { ProxyStats } from '../protocol/control-api.js';
import { GripSigSigner } from '../protocol/grip-sig.js';
import { createBridgePage } from './forward/bridge-page.js';
import { createControlServer } from './control/control-api.js';
import { errorCodeOf, sendError } from './errors.js';
import { createForwarder } from './forward/forwarder.js';
import { HoldRegistry } from './holds/hold-registry.js';
import { clientHostEntries, createHostFilter } from './http/host-filter.js';
import { checkRequestHost } from './http/request-host.js';
import { createProxyMetrics, type ProxyMetrics } from './control/metrics.js';
import { resolveProxyOptions, type ProxyOptions, type ProxyOptionsInput } from './options.js';
import { createReasker } from './forward/reask.js';
import { RedisBus } from './bus/redis-bus.js';
import type { ProxyBus, WholeProxyViews } from './bus/proxy-bus.js';
import { Repolls } from './repoll/repolls.js';
import { trackRequestlessSockets } from './http/requestless-sockets.js';
import { assignRequestId, chooseRequestId, requestIdOf, responseRequestId, setResponseRequestId } from './http/request-id.js';
import { jsonpOf } from './http/jsonp.js';
import { moveExchange, type Exchange } from './forward/exchange.js';
import { createStatusPage } from './control/status-page.js';
import { createUpstreamResponseHandler } from './forward/upstream-response.js';
import { createPipelineGate } from './forward/pipeline-gate.js';
import { clientAddressOf } from './forward/client-address.js';
import { createConnectionWarner } from './http/connection-warnings.js';
import { watchWriteStalls, WatchedResponse } from './http/write-stall-watch.js';
import { StreamRegistry } from './streams/stream-registry.js';
import { ClientFront } from './http/front/client-front.js';
import type { FrontRequest } from './http/front/front-request.js';
import type { FrontResponse } from './http/front/front-response.js';
import { forwardedValuesOf } from './forward/forwarded-headers.js';
import { finalRequestHeaders } from './http/front/final-headers.js';

export interface HoldProxy {
  /**
   * Client-facing server (forwarding and parking). Not listening until `listen()`; with `clientFront` it never
   * listens: the front (below) owns the port and feeds it every request it does not serve itself.
   */
  readonly clientServer: Server;
  /** The client port's front (proxy/http/front/); null with `clientFront: false`. */
  readonly clientFront: ClientFront | null;
  /** Control API server (publish/push/close/stats/health). Not listening until `listen()`. */
  readonly controlServer: Server;
  readonly registry: HoldRegistry;
  /** Open stream holds (docs/protocol.md §14). */
  readonly streams: StreamRegistry;
  /** Leases and the channel buffer; null without a lease key. */
  readonly repolls: Repolls | null;
  /** This proxy's Prometheus metrics (own registry), served at `GET /metrics` on the control port. */
  readonly metrics: ProxyMetrics;
  /** The resolved options, defaults filled in. */
  readonly options: ProxyOptions;
  /** The keep-alive agent to the app: its `sockets` are the upstream capacity client requests hold now. */
  readonly upstreamAgent: Agent;
  /** Opens both ports; resolves with the bound ports (useful with port 0). */
  listen(): Promise<{ clientPort: number; controlPort: number }>;
  /**
   * Graceful shutdown (docs/protocol.md §9): answers every parked request with
   * its timeout response plus `Connection: close`, stops accepting, waits for
   * in-flight requests, closes both servers and the upstream agent. Idempotent.
   */
  close(): Promise<void>;
  stats(): ProxyStats;
}

/** What a proxy worker of a cluster brings (proxy/cluster/): its bus to the primary, and the whole proxy's views. */
export interface HoldProxyDeps {
  /** Replaces the bus `redisUrl` would build. */
  bus?: ProxyBus;
  /** `/stats` and `/metrics` for every worker together. */
  views?: WholeProxyViews;
}

/** Builds a hold proxy; throws `ProxyOptionsError` for bad options. Opens nothing. Always one process (`workers` is main.ts's). */
export function createHoldProxy(input: ProxyOptionsInput, deps: HoldProxyDeps = {}): HoldProxy {
  const options = resolveProxyOptions(input);
  const log = options.logger;
  let closing: Promise<void> | null = null;
  const isClosing = () => closing !== null;

  // Grip-Sig is a JWT: its iat/exp need wall-clock time, not the injectable clock.
  const signer = new GripSigSigner(options.secret);
  // `timeout` is the idle timeout of a kept-alive socket (each request sets its own while it runs); Node's agent
  // also honours the app's `Keep-Alive: timeout=N` hint, closing a free socket a second before the app would.
  const agent = new Agent({ keepAlive: true, maxSockets: options.upstreamMaxSockets, timeout: options.upstreamIdleTimeoutMs });
  const metrics = createProxyMetrics(() => registry.stats());
  // Scaled out (docs/scaleout.md): publishes, pushes and connection queues go through Redis.
  const bus: ProxyBus | null = deps.bus ?? (options.redisUrl === undefined ? null : new RedisBus({ ...options, redisUrl: options.redisUrl, now: options.timers.now }));
  // Re-polls answered without the app (docs/protocol.md §13): only with a lease key to trust the app's leases.
  const leaseKey = options.leaseKey;
  const repolls = leaseKey === undefined ? null : new Repolls({ ...options, leaseKey }, () => registry);
  // Streams and the registry count against the same parking caps, and publishes reach streams through the registry.
  const streams: StreamRegistry = new StreamRegistry({
    options,
    parkedLoad: (address) => registry.parkedLoad(address),
    reask: (exchange, lastIds) => reask(exchange, lastIds),
  });
  const registry: HoldRegistry = new HoldRegistry({
    ...options,
    streams,
    ...(bus === null ? {} : { shared: bus.connections }),
    ...(repolls === null ? {} : { listener: repolls }),
    reask: (exchange, lastIds) => reask(exchange, lastIds),
    observer: metrics,
  });
  const publishSeq = () => registry.publishSeq;
  const handleUpstreamResponse = createUpstreamResponseHandler({ registry, options, isClosing, repolls, streams, adoptHold });
  const reask = createReasker({ options, agent, signer, publishSeq, handleUpstreamResponse });
  const forward = createForwarder({ options, agent, signer, publishSeq, handleUpstreamResponse, repolls });

  const serveBridge = createBridgePage({
    path: options.bridgePagePath,
    originAgentCluster: options.bridgeOriginAgentCluster,
    logger: log,
  });
  // The hosts the client port serves (docs/protocol.md §1.7); loopback names always.
  const servedHosts = clientHostEntries(options);
  const hostCheck = {
    serves: createHostFilter(servedHosts, { ipAddresses: false }),
    notServed: (name: string) => `Host ${name} is not served; set ALLOWED_HOSTS (allowedHosts) or BASE_DOMAIN to serve it`,
    accepted: new Set<string>(),
  };
  if (servedHosts.length === 0 && !isLoopbackHost(options.clientHost)) {
    log.warn(
      { clientHost: options.clientHost },
      'the client port listens beyond loopback but serves only loopback Host names; set ALLOWED_HOSTS to the names clients use',
    );
  }
  // The latest response on each client connection, to spot pipelined requests.
  const latestOnSocket = new WeakMap<Socket, ServerResponse>();
  const warnConnection = createConnectionWarner(log);
  const pipelineGate = createPipelineGate({
    maxQueued: options.pipelineMaxQueued,
    trustForwardedFor: options.trustForwardedFor,
    warn: warnConnection,
  });

  // requireHostHeader off: Node would answer a Host-less HTTP/1.1 request with a bare 400; we answer it in JSON below.
  // WatchedResponse: every write tells the write-stall watch (below) when it leaves the socket's buffer full.
  const clientServer = createServer({ ...httpServerOptions(options), requireHostHeader: false, ServerResponse: WatchedResponse }, (req, res) => {
    // First, so the forwarder, re-asks, logs and every answer carry it.
    assignRequestId(req, res);
    // Node emits 'request' for a pipelined request at once but writes its answer only
    // after the earlier ones: a parked request in front would hold it for the whole hold.
    const earlier = latestOnSocket.get(req.socket);
    if (earlier !== undefined && !earlier.writableFinished) {
      registry.releasePipelined(earlier);
      streams.releasePipelined(earlier);
    }
    latestOnSocket.set(req.socket, res);
    // One request at a time per connection: the rest wait here, holding nothing upstream.
    pipelineGate.admit(req, res, handleClientRequest);
  });

  function handleClientRequest(req: IncomingMessage, res: ServerResponse): void {
    if (isClosing()) {
      sendError(res, 'PROXY_ERR_SHUTTING_DOWN', 'the proxy is shutting down', { connection: 'close' });
      return;
    }
    // Before anything reads the request: a Host we do not serve may be a DNS-rebinding page.
    const host = checkRequestHost(req, hostCheck);
    if (!host.ok) {
      log.info({ requestId: requestIdOf(req), code: host.code, host: req.headers.host?.slice(0, 256), url: req.url?.slice(0, 256) }, 'request host refused');
      sendError(res, host.code, host.message);
      return;
    }
    if (serveBridge(req, res)) return;
    forward(req, res);
  }

  // A client that stops reading is cut off, and whatever it holds (upstream request, parked poll) with it.
  const writeStalls = watchWriteStalls(clientServer, {
    timeoutMs: options.clientWriteTimeoutMs,
    timers: options.timers,
    onStall: (socket, stalledMs) => {
      const req = pipelineGate.current(socket);
      warnConnection(
        socket,
        {
          requestId: req === undefined ? undefined : requestIdOf(req),
          clientAddress: req === undefined ? socket.remoteAddress : clientAddressOf(req, options.trustForwardedFor),
          stalledMs,
          timeoutMs: options.clientWriteTimeoutMs,
        },
        'client stopped reading its answer; connection closed',
      );
    },
  });
  // Leased re-polls served without node:http's per-request objects (issue 15); everything else goes to clientServer.
  const jsonpParam = options.jsonpCallbackParam;
  /** How many proxy-owned headers the last request had (one object for every request, not one each). */
  const forged = { count: 0 };
  function serveFast(req: FrontRequest, res: FrontResponse): boolean {
    if (repolls === null || isClosing()) return false;
    // A JSON-P callback is cut out (and answers wrapped) by the forwarder: such a request goes through it.
    if (jsonpParam !== undefined && req.url.includes(jsonpParam)) return false;
    // Refusals are answered by node:http's path, which checks again.
    if (!checkRequestHost(req, hostCheck).ok) return false;
    const decision = repolls.decide(req);
    if (decision === null || typeof decision === 'string') return false;
    // What handleClientRequest, the forwarder and `act` do to the request before it parks (request id, headers
    // stripped, X-Forwarded-For), with its headers built once in their final shape (http/front/final-headers.ts).
    const requestId = chooseRequestId(req);
    setResponseRequestId(res, requestId);
    const clientAddress = options.trustForwardedFor ? forwardedValuesOf(req, true).for : clientAddressOf(req, false);
    req.headers = finalRequestHeaders(req.headers, requestId, clientAddress, forged);
    req.compactHeaders = true;
    if (forged.count > 0) log.debug({ url: req.url, count: forged.count }, 'client sent Grip-* or forwarding headers; removed');
    repolls.act(req, res, decision, clientAddress);
    return true;
  }
  // Only with leases: without them the front would serve nothing and only add a hop to every request.
  const clientFront =
    !options.clientFront || repolls === null
      ? null
      : new ClientFront({
          server: clientServer,
          maxHeaderBytes: options.maxHeaderBytes,
          headersTimeoutMs: options.headersTimeoutMs,
          keepAliveTimeoutMs: options.keepAliveTimeoutMs,
          timers: options.timers,
          mayServe: (method, url) => method === 'GET' && repolls.isLeasedPath(url),
          serve: serveFast,
          releasePipelined: (res) => {
            registry.releasePipelined(res);
            streams.releasePipelined(res);
          },
          answered: (req, res) => {
            const code = errorCodeOf(res);
            if (code !== undefined) metrics.countError(code);
            if (log.isLevelEnabled('debug')) log.debug({ requestId: requestIdOf(req), method: req.method, url: req.url, status: res.statusCode, code, front: true }, 'request done');
          },
          writeFilled: (socket) => writeStalls.note(socket),
        });

  /**
   * A first poll the app held, moved off node:http onto the client front when its connection allows
   * (FrontConnection.adopt): while parked it then keeps what a leased re-poll keeps, and its answer is written as
   * one (issue 15: node:http's objects were most of a storm-parked request's memory). Re-asks, bodies and JSON-P
   * stay with Node.
   */
  function adoptHold(exchange: Exchange): Exchange {
    const { req, res } = exchange;
    if (clientFront === null || exchange.reasks > 0 || exchange.bodySize() !== 0) return exchange;
    if (!(req instanceof IncomingMessage) || !(res instanceof ServerResponse) || jsonpOf(res) !== undefined) return exchange;
    const moved = clientFront.adopt(req, res);
    if (moved === null) return exchange;
    const requestId = responseRequestId(res);
    if (requestId !== undefined) setResponseRequestId(moved.res, requestId);
    registry.countFrontTakeover();
    return moveExchange(exchange, moved.req, moved.res);
  }

  const controlServer = createControlServer({
    options,
    registry,
    ...(bus === null ? {} : { sink: bus }),
    isClosing,
    metrics,
    statusPage: createStatusPage({ logger: log }),
    repolls,
    ...(deps.views === undefined ? {} : { views: deps.views }),
  });

  // Every answer: count {code, message} errors by code; one debug line per client request. One listener function
  // for every response, no closure per request unless debug lines are on (issue 15: garbage per delivery).
  function countErrorOnFinish(this: ServerResponse): void {
    const code = errorCodeOf(this);
    if (code !== undefined) metrics.countError(code);
  }
  const onAnswered = (side: 'client' | 'control') => (req: IncomingMessage, res: ServerResponse) => {
    // 'finish' comes once: `on` spares the wrapper `once` would allocate.
    res.on('finish', countErrorOnFinish);
    if (side !== 'client' || !log.isLevelEnabled('debug')) return;
    const started = performance.now();
    res.on('finish', () => {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      log.debug({ requestId: requestIdOf(req), method: req.method, url: req.url, status: res.statusCode, code: errorCodeOf(res), ms }, 'request done');
    });
  };
  clientServer.on('request', onAnswered('client'));
  controlServer.on('request', onAnswered('control'));
  // Requests Node refuses before dispatching them (bad HTTP, head too large, slow-loris): JSON answers too.
  const clientErrorCodes: ClientErrorCodes = {
    badRequest: 'PROXY_ERR_BAD_REQUEST',
    headersTooLarge: 'PROXY_ERR_HEADERS_TOO_LARGE',
    timeout: 'PROXY_ERR_REQUEST_TIMEOUT',
  };
  answerClientErrors(clientServer, clientErrorCodes, log, (code) => metrics.countError(code));
  answerClientErrors(controlServer, clientErrorCodes, log, (code) => metrics.countError(code));
  // Connections that owe no answer (browser preconnects included) are closed at shutdown, not waited for.
  const closeRequestless = [clientServer, controlServer].map(trackRequestlessSockets);

  async function listen(): Promise<{ clientPort: number; controlPort: number }> {
    await bus?.start(registry, repolls === null ? undefined : (commands) => repolls.revoke(commands));
    if (clientFront === null) await listenOn(clientServer, options.clientPort, options.clientHost, options.listenBacklog);
    else await clientFront.listen(options.clientPort, options.clientHost, options.listenBacklog);
    try {
      await listenOn(controlServer, options.controlPort, options.controlHost);
    } catch (err) {
      await (clientFront === null ? closeServer(clientServer) : clientFront.close());
      throw err;
    }
    const clientPort = clientFront === null ? portOf(clientServer) : (clientFront.listener.address() as AddressInfo).port;
    return { clientPort, controlPort: portOf(controlServer) };
  }

  async function shutDown(): Promise<void> {
    const drained = registry.drain();
    const streamsEnded = streams.drain();
    log.info({ drained, streamsEnded }, 'closing: parked requests answered, streams ended');
    const closed = Promise.all([clientFront === null ? closeServer(clientServer) : clientFront.close(), closeServer(controlServer)]);
    // closeServer() drops idle keep-alive connections, but a connection that has not sent a
    // request yet would hold close() open until headersTimeout: drop those too.
    for (const close of closeRequestless) close();
    await closed;
    await bus?.stop();
    writeStalls.stop();
    agent.destroy();
  }

  return {
    clientServer,
    clientFront,
    controlServer,
    registry,
    streams,
    repolls,
    metrics,
    options,
    upstreamAgent: agent,
    listen,
    close: () => (closing ??= shutDown()),
    stats: () => registry.stats(),
  };
}

function listenOn(server: Server, port: number, host: string, backlog?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...(backlog === undefined ? {} : { backlog }) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Stops accepting, drops idle keep-alive connections, resolves when every connection has ended. */
function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}
