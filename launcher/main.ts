/**
 * `npm start`: the embedded default in one process tree — the chat app (SQLite)
 * and the hold proxy in front of it, sharing GRIP_SECRET, CONTROL_SECRET and
 * LEASE_KEY, each generated at start when it is not set. Reads the same
 * environment and flags as `npm run proxy` and `npm run server` (see the
 * README's configuration table).
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { LOG_REDACT } from '../common/log-redact.js';
import { appOptionsFromEnv } from '../server/config.js';
import { proxyOptionsFromEnv } from '../proxy/config.js';
import { startEmbedded } from './embedded.js';

// An invalid LOG_LEVEL is reported by the config readers below; until then log at info.
const wanted = process.env.LOG_LEVEL || 'info';
const level = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(wanted) ? wanted : 'info';
const logger = pino({ name: 'comet-chat', level, redact: LOG_REDACT });
const env = { ...process.env };
// One process tree, so a secret never has to leave it: generate each one not given, each its own
// (the Grip-Sig key and the control credential must differ, docs/protocol.md §7).
if (!env.GRIP_SECRET) {
  env.GRIP_SECRET = randomBytes(32).toString('base64url');
  logger.info('GRIP_SECRET not set: generated a Grip-Sig key for this run');
}
if (!env.CONTROL_SECRET) {
  env.CONTROL_SECRET = randomBytes(32).toString('base64url');
  logger.info('CONTROL_SECRET not set: generated a control API secret for this run');
}
if (!env.LEASE_KEY) {
  // Its own key (docs/protocol.md §13): re-poll leases on by default, and no credential doing two jobs.
  env.LEASE_KEY = randomBytes(32).toString('base64url');
}

let running: Awaited<ReturnType<typeof startEmbedded>>;
try {
  const appInput = appOptionsFromEnv(env, []);
  const proxyInput = proxyOptionsFromEnv(env, []);
  // Each part keeps the logger its config built (named, credentials redacted).
  running = await startEmbedded({ app: appInput, proxy: proxyInput });
} catch (err) {
  process.stderr.write(`comet-chat: ${(err as Error).message}\n`);
  process.exit(2);
}

process.stdout.write(
  `comet-chat is running at ${running.url} (app on port ${running.appPort}, control API on port ${running.controlPort})\n`,
);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: answering parked requests');
  await running.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
