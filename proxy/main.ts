/**
 * The hold proxy's entry point: the only file that reads the environment and
 * listens. Exit codes: 2 for bad configuration, 1 if it cannot listen, 0 after
 * a graceful SIGTERM/SIGINT shutdown.
 */
import { proxyOptionsFromEnv } from './config.js';
import { ProxyOptionsError } from './options.js';
import { createHoldProxy, type HoldProxy } from './proxy.js';
import { announce, endWithLauncher, launchedByLauncher } from '../common/launcher-ipc.js';

let proxy: HoldProxy;
try {
  proxy = createHoldProxy(proxyOptionsFromEnv(process.env, process.argv.slice(2)));
} catch (err) {
  if (!(err instanceof ProxyOptionsError)) throw err;
  process.stderr.write(`comet-chat proxy: ${err.message}\n`);
  process.exit(2);
}

const { options } = proxy;
const log = options.logger;
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
function shutDown(signal: NodeJS.Signals): void {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info({ signal }, 'shutting down');
  void proxy.close().then(() => {
    log.info('closed');
    process.exit(0);
  });
}
process.once('SIGTERM', shutDown);
process.once('SIGINT', shutDown);
// Forked by `npm start`: a launcher gone (even by SIGKILL) takes this proxy down, no orphan keeps the ports.
if (launchedByLauncher(process.env)) endWithLauncher(() => shutDown('SIGTERM'));
