/**
 * The chat app process: the only place that reads the environment and listens.
 * Exit codes: 0 after a signal-driven shutdown, 2 for bad configuration, 1 for
 * any other startup failure.
 */
import { createChatServer, type ChatServer } from './chat-server.js';
import { appOptionsFromEnv } from './config.js';
import { AppOptionsError } from './options.js';
import { announce, endWithLauncher, isConnectProxy, launchedByLauncher } from '../common/launcher-ipc.js';

// Under `npm start` the proxy starts after this app (it needs our port), so the
// launcher sends the control URL over IPC once the proxy listens (common/launcher-ipc.ts).
const launched = launchedByLauncher(process.env);

function start(): ChatServer {
  try {
    const input = appOptionsFromEnv(process.env, process.argv.slice(2));
    return createChatServer(launched ? { ...input, controlUrl: undefined } : input);
  } catch (err) {
    if (err instanceof AppOptionsError) {
      process.stderr.write(`chat app: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`chat app: cannot start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
}

const chat = start();
const { logger } = chat.options;

let shuttingDown = false;
function shutdown(signal: NodeJS.Signals): void {
  if (shuttingDown) return;
  shuttingDown = true;
  logger.info({ signal }, 'chat app shutting down');
  chat.close().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'chat app shutdown failed');
      process.exit(1);
    },
  );
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (launched) {
  endWithLauncher(() => shutdown('SIGTERM'));
  process.on('message', (message: unknown) => {
    // With REDIS_URL the relay already publishes to the bus.
    if (isConnectProxy(message) && !chat.relay.started) chat.connectProxy(message.controlUrl);
  });
}

chat.listen().then(
  (port) => {
    logger.info({ host: chat.options.host, port, dbPath: chat.options.dbPath, controlUrl: chat.options.controlUrl }, 'chat app listening');
    announce({ type: 'app-ready', host: chat.options.host, port });
  },
  (err: unknown) => {
    logger.fatal({ err }, 'chat app cannot listen');
    void chat.close().finally(() => process.exit(1));
  },
);
