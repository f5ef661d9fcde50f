/**
 * `createHoldProxy` wires the parts together and returns them unstarted: a
 * client server that forwards to the app and parks held requests, a control
 * server for publishers, and the hold registry between them. `listen()` opens
 * the ports; `close()` drains parked requests and releases every socket and
 * timer, so the process can exit.
 */
import { Agent, createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ProxyStats } from '../protocol/control-api.js';
import { GripSigSigner } from '../protocol/grip-sig.js';
import { createBridgePage } from './bridge-page.js';
import { createControlServer } from './control-api.js';
import { sendError } from './errors.js';
import { createForwarder } from './forwarder.js';
import { HoldRegistry } from './hold-registry.js';
import { isAcceptedHost } from './host-filter.js';
import { resolveProxyOptions, type ProxyOptions, type ProxyOptionsInput } from './options.js';
import { createReasker } from './reask.js';
import { createUpstreamResponseHandler } from './upstream-response.js';

export interface HoldProxy {
  /** Client-facing server (forwarding and parking). Not listening until `listen()`. */
  readonly clientServer: Server;
  /** Control API server (publish/push/close/stats/health). Not listening until `listen()`. */
  readonly controlServer: Server;
  readonly registry: HoldRegistry;
  /** The resolved options, defaults filled in. */
  readonly options: ProxyOptions;
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

/** Builds a hold proxy; throws `ProxyOptionsError` for bad options. Opens nothing. */
export function createHoldProxy(input: ProxyOptionsInput): HoldProxy {
  const options = resolveProxyOptions(input);
  const log = options.logger;
  let closing: Promise<void> | null = null;
  const isClosing = () => closing !== null;

  // Grip-Sig is a JWT: its iat/exp need wall-clock time, not the injectable clock.
  const signer = new GripSigSigner(options.secret);
  const agent = new Agent({ keepAlive: true, maxSockets: options.upstreamMaxSockets });
  const registry: HoldRegistry = new HoldRegistry({ ...options, reask: (exchange, lastIds) => reask(exchange, lastIds) });
  const publishSeq = () => registry.publishSeq;
  const handleUpstreamResponse = createUpstreamResponseHandler({ registry, options, isClosing });
  const reask = createReasker({ options, agent, signer, publishSeq, handleUpstreamResponse });
  const forward = createForwarder({ options, agent, signer, publishSeq, handleUpstreamResponse });

  const serveBridge = createBridgePage({
    path: options.bridgePagePath,
    originAgentCluster: options.bridgeOriginAgentCluster,
    logger: log,
  });
  // The latest response on each client connection, to spot pipelined requests.
  const latestOnSocket = new WeakMap<Socket, ServerResponse>();

  const clientServer = createServer((req, res) => {
    // Node emits 'request' for a pipelined request at once but writes its answer only
    // after the earlier ones: a parked request in front would hold it for the whole hold.
    const earlier = latestOnSocket.get(req.socket);
    if (earlier !== undefined && !earlier.writableFinished) registry.releasePipelined(earlier);
    latestOnSocket.set(req.socket, res);

    if (isClosing()) {
      sendError(res, 'PROXY_ERR_SHUTTING_DOWN', 'the proxy is shutting down', { connection: 'close' });
      return;
    }
    if (!isAcceptedHost(req.headers.host, options.baseDomain)) {
      log.info({ host: req.headers.host }, 'request for a host outside the base domain refused');
      sendError(res, 'PROXY_ERR_MISDIRECTED', `this server only serves ${options.baseDomain} and its subdomains`);
      return;
    }
    if (serveBridge(req, res)) return;
    forward(req, res);
  });
  const controlServer = createControlServer({ options, registry, isClosing });

  async function listen(): Promise<{ clientPort: number; controlPort: number }> {
    await listenOn(clientServer, options.clientPort, options.clientHost);
    try {
      await listenOn(controlServer, options.controlPort, options.controlHost);
    } catch (err) {
      await closeServer(clientServer);
      throw err;
    }
    return { clientPort: portOf(clientServer), controlPort: portOf(controlServer) };
  }

  async function shutDown(): Promise<void> {
    const drained = registry.drain();
    log.info({ drained }, 'closing: parked requests answered');
    await Promise.all([closeServer(clientServer), closeServer(controlServer)]);
    agent.destroy();
  }

  return {
    clientServer,
    controlServer,
    registry,
    options,
    listen,
    close: () => (closing ??= shutDown()),
    stats: () => registry.stats(),
  };
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
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
