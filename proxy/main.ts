/**
 * The hold proxy's entry point: the only file that reads the environment and
 * listens. Exit codes: 2 for bad configuration, 1 if it cannot listen, 0 after
 * a graceful SIGTERM/SIGINT shutdown.
 *
 * `workers` 1 (PROXY_WORKERS, the default) runs one process, no cluster. More
 * make this process the cluster primary (cluster/primary.ts), which runs this
 * file again in each worker (docs/scaleout.md "Workers").
 *
 * Each role imports only what it runs: the primary serves no HTTP, so it never
 * loads the proxy (proxy.ts and everything under it), and a worker or a single
 * process never loads the primary. Every process pays for the modules it loads
 * (heap, code space, start time, docs/performance.md "Issue 15").
 */
import cluster from 'node:cluster';
import { proxyOptionsFromEnv } from './config.js';
import { resolveProxyOptions, ProxyOptionsError, type ProxyOptions } from './options.js';
import type { HoldProxy } from './proxy.js';
import { announce, endWithLauncher, launchedByLauncher } from '../common/launcher-ipc.js';
import { isMessage, WORKER_PORTS_ENV } from './cluster/messages.js';
import { unbatch } from './cluster/ipc-batch.js';

let options: ProxyOptions;
try {
  options = resolveProxyOptions(proxyOptionsFromEnv(process.env, process.argv.slice(2)));
} catch (err) {
  if (!(err instanceof ProxyOptionsError)) throw err;
  process.stderr.write(`comet-chat proxy: ${err.message}\n`);
  process.exit(2);
}
const log = options.logger;

if (options.workers > 1 && cluster.isPrimary) {
  let ports: { clientPort: number; controlPort: number; done: Promise<number> };
  try {
    const { runPrimary } = await import('./cluster/primary.js');
    ports = await runPrimary(options);
  } catch (err) {
    log.fatal({ err }, 'cannot start the workers');
    process.exit(1);
  }
  const { clientPort, controlPort, done } = ports;
  log.info(
    { clientHost: options.clientHost, clientPort, controlHost: options.controlHost, controlPort, upstreamUrl: options.upstreamUrl, workers: options.workers },
    'listening',
  );
  announce({ type: 'proxy-ready', clientHost: options.clientHost, clientPort, controlHost: options.controlHost, controlPort });
  // Forked by `npm start`: a launcher gone takes the primary (and with it every worker) down.
  if (launchedByLauncher(process.env)) endWithLauncher(() => process.kill(process.pid, 'SIGTERM'));
  const code = await done;
  log.info({ code }, 'closed');
  process.exit(code);
} else if (cluster.isWorker && process.env[WORKER_PORTS_ENV] !== undefined) {
  // Only a worker our own primary forked (a process manager's cluster mode, e.g. PM2's, runs us as a plain proxy).
  // The primary chose the ports (so port 0 means one free port for every worker, not one per server).
  const [clientPort, controlPort] = (process.env[WORKER_PORTS_ENV] ?? '').split(',').map(Number);
  const [{ createHoldProxy }, { WorkerBus }] = await Promise.all([import('./proxy.js'), import('./cluster/worker-bus.js')]);
  const bus = new WorkerBus(process as unknown as ConstructorParameters<typeof WorkerBus>[0], options);
  let proxy: HoldProxy;
  try {
    proxy = createHoldProxy({ ...options, clientPort, controlPort }, { bus, views: bus });
    bus.serveLocal({
      stats: () => proxy.stats(),
      metrics: async () => {
        await proxy.metrics.scrape(); // starts the default process metrics on the first call
        return proxy.metrics.registry.getMetricsAsJSON();
      },
    });
    await proxy.listen();
  } catch (err) {
    log.fatal({ err }, 'worker cannot listen');
    process.exit(1);
  }
  log.info({ clientPort, controlPort, pid: process.pid }, 'worker listening');
  process.send!({ k: 'ready' });
  const stop = (reason: string, code: number): void => {
    log.info({ reason }, 'worker shutting down');
    void proxy.close().then(() => process.exit(code));
  };
  process.on('message', (raw: unknown) =>
    // The primary's messages come in batches (cluster/ipc-batch.ts): a shutdown may follow entries in one.
    unbatch(raw, (message) => {
      if (isMessage(message) && message.k === 'shutdown') stop('primary', 0);
    }),
  );
  // If the primary dies, node:cluster exits this worker at once (its IPC channel closed): its clients' sockets
  // close and they poll again once a process manager has restarted the proxy.
  // A signal to the whole process group (Ctrl-C) reaches workers too: the primary's shutdown message does the work.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => stop('SIGTERM', 0));
} else {
  const { createHoldProxy } = await import('./proxy.js');
  let proxy: HoldProxy;
  try {
    proxy = createHoldProxy(options);
  } catch (err) {
    if (!(err instanceof ProxyOptionsError)) throw err;
    process.stderr.write(`comet-chat proxy: ${err.message}\n`);
    process.exit(2);
  }
  try {
    const { clientPort, controlPort } = await proxy.listen();
    log.info(
      { clientHost: options.clientHost, clientPort, controlHost: options.controlHost, controlPort, upstreamUrl: options.upstreamUrl },
      'listening',
    );
    announce({ type: 'proxy-ready', clientHost: options.clientHost, clientPort, controlHost: options.controlHost, controlPort });
  } catch (err) {
    log.fatal({ err }, 'cannot listen');
    process.exit(1);
  }

  let shuttingDown = false;
  const shutDown = (signal: NodeJS.Signals): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, 'shutting down');
    void proxy.close().then(() => {
      log.info('closed');
      process.exit(0);
    });
  };
  process.once('SIGTERM', shutDown);
  process.once('SIGINT', shutDown);
  // Forked by `npm start`: a launcher gone (even by SIGKILL) takes this proxy down, no orphan keeps the ports.
  if (launchedByLauncher(process.env)) endWithLauncher(() => shutDown('SIGTERM'));
}
