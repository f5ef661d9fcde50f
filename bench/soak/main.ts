/**
 * `npm run soak`: a bounded end-to-end run on loopback (docs/operations.md, "Soak").
 *
 * The app and the proxy run as child processes (bench/soak/processes.ts), the
 * clients in separate load-generator processes (load-worker.ts). Phases:
 * setup (clients sign in, join rooms, park) → churn for --duration-s (posts,
 * aborted polls, joins and leaves at random; the proxy restarted at 1/3, the app
 * at 2/3, each with SIGTERM and started again on the same ports and database) →
 * quiesce (actions finish) → catch-up (every client reaches its rooms' last
 * events) → stop → report: the database is the ground truth (report.ts).
 *
 * Progress goes to stderr, the report table to stdout and the JSON to
 * bench/results/soak-<timestamp>.json (or --out). Exit code 1 when anything was
 * lost or duplicated, requests were still parked at the end, or nothing was
 * committed; 2 for a bad command line.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProxyStats } from '../../protocol/control-api.js';
import type { ClientRecord, WorkerConfig } from './messages.js';
import { parseSoakOptions, SoakUsageError, type SoakOptions } from './options.js';
import { freePort, rssBytes, startServer, type ServerProcess } from './processes.js';
import { histogramQuantile, parsePromText, type Sample } from './prom-text.js';
import { checkDeliveries, formatTable, mib, type EventRow } from './report.js';
import { sleep } from './soak-client.js';
import { WorkerPool } from './workers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Clients per loopback source address: well under the proxy's default of 1,000 parked per address. */
const CLIENTS_PER_ADDRESS = 250;

let options: SoakOptions;
try {
  options = parseSoakOptions(process.argv.slice(2), process.env);
} catch (err) {
  if (!(err instanceof SoakUsageError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}

const startedAt = new Date();
const started = Date.now();
const elapsedS = () => ((Date.now() - started) / 1000).toFixed(0);
const secret = randomBytes(32).toString('base64url');
/** The control API credential: its own key, never the Grip-Sig one. */
const controlSecret = randomBytes(32).toString('base64url');
const runDir = mkdtempSync(join(tmpdir(), 'comet-soak-'));
const dbPath = join(runDir, 'chat.db');
const [appPort, clientPort, controlPort] = [await freePort(), await freePort(), await freePort()];
const controlUrl = `http://127.0.0.1:${controlPort}`;
const rooms = Array.from({ length: options.rooms }, (_, i) => `soak-${String(i).padStart(2, '0')}`);
let phase = 'start';
let starts = { app: 0, proxy: 0 };

// --- progress on stderr --------------------------------------------------------------------

let pool: WorkerPool | null = null;
let lastParked: number | null = null;
function status(): string {
  const p = pool?.progress();
  const parts = [`[soak] ${phase.padEnd(9)} ${elapsedS().padStart(4)}s`];
  if (p) {
    parts.push(
      `ready ${p.clientsReady}/${options.clients}`,
      `polls ${p.pollsAnswered}`,
      `events ${p.eventsReceived}`,
      `posts ${p.postsOk} (failed ${p.postsFailed})`,
      `joins ${p.joins} leaves ${p.leaves}`,
      `aborts ${p.aborts}`,
      `resyncs ${p.resyncs}`,
      `poll errors ${p.pollErrors}`,
    );
  }
  if (lastParked !== null) parts.push(`parked ${lastParked}`);
  return parts.join(' | ');
}
const tty = process.stderr.isTTY === true;
let lastLine = 0;
const progressTimer = setInterval(() => {
  if (tty) process.stderr.write(`\r\x1b[K${status()}`);
  else if (Date.now() - lastLine >= 5_000) {
    lastLine = Date.now();
    process.stderr.write(`${status()}\n`);
  }
}, 1_000);
function say(text: string): void {
  process.stderr.write(`${tty ? '\r\x1b[K' : ''}[soak] ${elapsedS().padStart(4)}s ${text}\n`);
}

// --- the servers ---------------------------------------------------------------------------

function startApp(): Promise<ServerProcess> {
  starts.app++;
  return startServer({
    name: 'app',
    root: ROOT,
    script: 'server/main.ts',
    args: ['--port', String(appPort), '--db', dbPath, '--control-url', controlUrl],
    env: { PATH: process.env.PATH, GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, LOG_LEVEL: 'info', HOLD_TIMEOUT_S: String(options.holdTimeoutS) },
    readyMessage: 'chat app listening',
    logPath: join(runDir, `app-${starts.app}.log`),
  });
}

function startProxy(): Promise<ServerProcess> {
  starts.proxy++;
  return startServer({
    name: 'proxy',
    root: ROOT,
    script: 'proxy/main.ts',
    args: [],
    env: {
      PATH: process.env.PATH,
      GRIP_SECRET: secret,
      CONTROL_SECRET: controlSecret,
      LOG_LEVEL: 'info',
      APP_URL: `http://127.0.0.1:${appPort}`,
      PROXY_PORT: String(clientPort),
      CONTROL_PORT: String(controlPort),
    },
    readyMessage: 'listening',
    logPath: join(runDir, `proxy-${starts.proxy}.log`),
  });
}

async function control(path: string): Promise<Response> {
  return fetch(`${controlUrl}${path}`, { headers: { authorization: `Bearer ${controlSecret}` }, signal: AbortSignal.timeout(5_000) });
}
async function proxyStats(): Promise<ProxyStats | null> {
  try {
    const res = await control('/stats');
    return res.ok ? ((await res.json()) as ProxyStats) : null;
  } catch {
    return null;
  }
}
function heapUsed(samples: Sample[]): number | null {
  return samples.find((s) => s.name === 'comet_proxy_nodejs_heap_size_used_bytes')?.value ?? null;
}
async function proxyMetrics(): Promise<Sample[]> {
  try {
    const res = await control('/metrics');
    return res.ok ? parsePromText(await res.text()) : [];
  } catch {
    return [];
  }
}

/** Polls /stats until `done(stats)` or the deadline; returns the last stats seen. */
async function watchStats(done: (s: ProxyStats) => boolean, timeoutMs: number): Promise<ProxyStats | null> {
  const deadline = Date.now() + timeoutMs;
  let stats: ProxyStats | null = null;
  while (Date.now() < deadline) {
    stats = await proxyStats();
    lastParked = stats?.parked ?? lastParked;
    if (stats !== null && done(stats)) return stats;
    await sleep(200);
  }
  return stats;
}

function readDb<T>(read: (db: Database.Database) => T): T {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Each soak room's last event id, from the database (WAL: read while the app writes). */
function readLastIds(): Record<string, number> {
  return readDb((db) => {
    const rows = db
      .prepare(`SELECT r.name AS room, MAX(e.id) AS last FROM events e JOIN rooms r ON r.id = e.room_id WHERE r.name LIKE 'soak-%' GROUP BY r.name`)
      .all() as Array<{ room: string; last: number }>;
    return Object.fromEntries(rows.map((r) => [r.room, r.last]));
  });
}

/** Loopback addresses for worker `w`'s clients, at most CLIENTS_PER_ADDRESS each (127.0.<w+1>.<n>). */
function sourceAddresses(w: number, clients: number): string[] {
  const count = Math.max(1, Math.ceil(clients / CLIENTS_PER_ADDRESS));
  return Array.from({ length: count }, (_, n) => `127.0.${w + 1}.${n + 1}`);
}

// --- the run -------------------------------------------------------------------------------

interface Restart {
  target: 'proxy' | 'app';
  atS: number;
  /** SIGTERM to exit (graceful shutdown), then exit to ready (start-up), and their sum. */
  stopMs: number;
  startMs: number;
  downtimeMs: number;
  exitCode: number | null;
}

let app: ServerProcess | null = null;
let proxy: ServerProcess | null = null;
const restarts: Restart[] = [];
const failures: string[] = [];
let exitCode = 1;

// However this process ends (an uncaught error, a closed stdout), no child outlives it.
process.on('exit', () => {
  for (const child of [app?.child, proxy?.child, ...(pool?.workers.map((w) => w.child) ?? [])]) {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

// Ctrl-C (or a test's SIGTERM): take the children down with us, never leave them running.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n[soak] ${signal}: stopping the servers and load generators\n`);
    void Promise.allSettled([pool?.kill(), proxy?.stop(5_000), app?.stop(5_000)]).then(() => process.exit(130));
  });
}

async function restart(target: 'proxy' | 'app'): Promise<void> {
  const atS = (Date.now() - started) / 1000;
  say(`restarting the ${target} (SIGTERM, then start on the same port${target === 'app' ? ' and database' : ''})`);
  const t0 = Date.now();
  const exitCode = await (target === 'proxy' ? proxy! : app!).stop();
  const t1 = Date.now();
  if (target === 'proxy') proxy = await startProxy();
  else app = await startApp();
  const t2 = Date.now();
  restarts.push({ target, atS, stopMs: t1 - t0, startMs: t2 - t1, downtimeMs: t2 - t0, exitCode });
  if (exitCode !== 0) failures.push(`the ${target} exited with code ${exitCode} on SIGTERM`);
  say(`${target} back after ${t2 - t0} ms (shutdown ${t1 - t0} ms, start ${t2 - t1} ms)`);
}

try {
  say(`${options.clients} clients in ${options.workers} load generator(s), ${options.rooms} rooms, ${options.durationS} s of churn, seed ${options.seed}; run dir ${runDir}`);
  phase = 'servers';
  app = await startApp();
  proxy = await startProxy();

  phase = 'setup';
  pool = new WorkerPool(options.workers, ROOT);
  const perWorker = (total: number) => total / options.workers;
  for (let w = 0; w < options.workers; w++) {
    const clients = Math.floor(options.clients / options.workers) + (w < options.clients % options.workers ? 1 : 0);
    const config: WorkerConfig = {
      worker: w,
      proxyUrl: `http://127.0.0.1:${clientPort}`,
      clients,
      rooms,
      initialRoomsMin: options.initialRoomsMin,
      initialRoomsMax: options.initialRoomsMax,
      postsPerS: perWorker(options.postsPerS),
      joinsLeavesPerS: perWorker(options.joinsLeavesPerS),
      abortsPerS: perWorker(options.abortsPerS),
      seed: options.seed * 1000 + w,
      pollTimeoutMs: (options.holdTimeoutS + 15) * 1000,
      sourceAddresses: sourceAddresses(w, clients),
      maxRunMs: options.durationS * 1000 + 10 * 60_000,
    };
    pool.send(w, { type: 'setup', config });
  }
  await pool.all('joined', 60_000 + options.clients * 20);
  pool.broadcast({ type: 'start-polling', lastIds: readLastIds() });
  await pool.all('ready', 10_000);
  await watchStats((s) => s.parked >= options.clients * 0.95, 30_000);
  const before = { proxy: rssBytes(proxy.pid), app: rssBytes(app.pid), proxyPid: proxy.pid, appPid: app.pid, proxyHeap: heapUsed(await proxyMetrics()) };
  say(`setup done: ${lastParked} parked; RSS proxy ${mib(before.proxy)}, app ${mib(before.app)}`);

  phase = 'churn';
  const churnStart = Date.now();
  const churnMs = options.durationS * 1000;
  pool.broadcast({ type: 'churn' });
  const pending: Array<['proxy' | 'app', number]> = options.restarts ? [['proxy', churnMs / 3], ['app', (2 * churnMs) / 3]] : [];
  while (Date.now() - churnStart < churnMs) {
    const next = pending[0];
    if (next !== undefined && Date.now() - churnStart >= next[1]) {
      pending.shift();
      await restart(next[0]);
      continue;
    }
    lastParked = (await proxyStats())?.parked ?? lastParked;
    await sleep(Math.min(1_000, Math.max(10, churnMs - (Date.now() - churnStart))));
  }

  phase = 'quiesce';
  pool.broadcast({ type: 'quiesce' });
  await pool.all('quiet', 90_000);

  phase = 'catch-up';
  const lastIds = readLastIds();
  const catchUpTimeoutMs = (options.holdTimeoutS + 15) * 1000;
  pool.broadcast({ type: 'catch-up', lastIds, timeoutMs: catchUpTimeoutMs });
  const caught = await pool.all('caught-up', catchUpTimeoutMs + 10_000);
  const behind = caught.reduce((n, c) => n + c.behind, 0);
  const catchUpMs = Math.max(...caught.map((c) => c.ms));
  if (behind > 0) failures.push(`${behind} client(s) still behind their rooms' last events after ${catchUpTimeoutMs} ms`);
  say(`catch-up: ${behind} client(s) behind after ${catchUpMs} ms`);

  const samples = await proxyMetrics();
  const after = { proxy: rssBytes(proxy.pid), app: rssBytes(app.pid), proxyPid: proxy.pid, appPid: app.pid, proxyHeap: heapUsed(samples) };
  const statsAtEnd = await proxyStats();

  phase = 'stop';
  pool.broadcast({ type: 'stop' });
  const reports = await pool.all('report', 60_000);
  const clients: ClientRecord[] = reports.flatMap((r) => r.clients);
  const finalProgress = pool.progress();
  // Every client is gone: the proxy must have let go of every parked request.
  const parkedStats = await watchStats((s) => s.parked === 0 && s.reasking === 0, 10_000);
  const parkedAtEnd = parkedStats === null ? -1 : parkedStats.parked + parkedStats.reasking;

  phase = 'shutdown';
  const proxyExit = await proxy.stop();
  const appExit = await app.stop();
  if (proxyExit !== 0) failures.push(`the proxy exited with code ${proxyExit} at the end`);
  if (appExit !== 0) failures.push(`the app exited with code ${appExit} at the end`);

  phase = 'report';
  const events = readDb((db) =>
    db.prepare('SELECT e.id AS id, r.name AS room, e.type AS type FROM events e JOIN rooms r ON r.id = e.room_id').all() as EventRow[],
  );
  const outboxLeft = readDb((db) => (db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n);
  const check = checkDeliveries(events, lastIds, clients);

  if (check.lost !== 0) failures.push(`${check.lost} expected deliveries lost`);
  if (check.duplicated !== 0) failures.push(`${check.duplicated} duplicated deliveries`);
  if (check.unknown !== 0) failures.push(`${check.unknown} received event ids are not in the database`);
  if (parkedAtEnd !== 0) failures.push(`${parkedAtEnd} request(s) still parked or re-asking after the clients stopped`);
  if (check.committedMessages === 0) failures.push('no message was committed');
  if (pool.errors.length > 0) failures.push(`load generator errors: ${pool.errors.slice(0, 3).join(' / ')}`);

  const errorsByCode = Object.fromEntries(
    samples.filter((s) => s.name === 'comet_proxy_errors_total' && s.value > 0).map((s) => [s.labels.code ?? '?', s.value]),
  );
  const ms = (seconds: number | undefined) => (seconds === undefined ? null : Math.round(seconds * 100_000) / 100);
  const report = {
    ok: failures.length === 0,
    failures,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    wallS: Math.round((Date.now() - started) / 100) / 10,
    options,
    committed: { messages: check.committedMessages, events: check.committedEvents, outboxLeft },
    deliveries: {
      expected: check.expected,
      delivered: check.delivered,
      lost: check.lost,
      duplicated: check.duplicated,
      outsideWindow: check.outsideWindow,
      unknown: check.unknown,
      lostExamples: check.lostExamples,
      duplicateExamples: check.duplicateExamples,
    },
    parkedAtEnd,
    clients: { total: clients.length, behindAfterCatchUp: behind, catchUpMs, ...finalProgress },
    restarts,
    memory: {
      proxy: {
        beforeRssBytes: before.proxy,
        afterRssBytes: after.proxy,
        beforeHeapUsedBytes: before.proxyHeap,
        afterHeapUsedBytes: after.proxyHeap,
        pidBefore: before.proxyPid,
        pidAfter: after.proxyPid,
      },
      app: { beforeRssBytes: before.app, afterRssBytes: after.app, pidBefore: before.appPid, pidAfter: after.appPid },
    },
    proxySinceLastStart: {
      stats: statsAtEnd,
      publishToWriteMs: {
        p50: ms(histogramQuantile(samples, 'comet_proxy_publish_to_write_seconds', 0.5)),
        p99: ms(histogramQuantile(samples, 'comet_proxy_publish_to_write_seconds', 0.99)),
      },
      holdDeliveredMs: { p50: ms(histogramQuantile(samples, 'comet_proxy_hold_duration_seconds', 0.5, { outcome: 'delivered' })) },
      errorsByCode,
    },
    runDir: null as string | null,
  };

  const keep = options.keep || !report.ok;
  if (keep) report.runDir = runDir;
  const out = options.out ?? join(ROOT, 'bench', 'results', `soak-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);

  clearInterval(progressTimer);
  if (tty) process.stderr.write('\r\x1b[K');
  const rows: Array<[string, string | number]> = [
    ['result', report.ok ? 'PASS' : 'FAIL'],
    ['churn / wall time', `${options.durationS} s / ${report.wallS} s`],
    ['clients (load generators)', `${options.clients} (${options.workers})`],
    ['messages committed (database)', check.committedMessages],
    ['events committed (database)', check.committedEvents],
    ['deliveries expected', check.expected],
    ['delivered', check.delivered],
    ['lost', check.lost],
    ['duplicated', check.duplicated],
    ['outside membership windows', check.outsideWindow],
    ['parked at end', parkedAtEnd],
    ['posts ok / failed', `${finalProgress.postsOk} / ${finalProgress.postsFailed}`],
    ['joins / leaves / aborts', `${finalProgress.joins} / ${finalProgress.leaves} / ${finalProgress.aborts}`],
    ['polls answered / errors', `${finalProgress.pollsAnswered} / ${finalProgress.pollErrors}`],
    ['resync answers', finalProgress.resyncs],
    ['catch-up time', `${catchUpMs} ms`],
    ...restarts.map((r): [string, string] => [`${r.target} restart at ${r.atS.toFixed(0)} s`, `${r.downtimeMs} ms down`]),
    ['proxy RSS before / after', `${mib(before.proxy)} / ${mib(after.proxy)}`],
    ['proxy heap used before / after', `${mib(before.proxyHeap)} / ${mib(after.proxyHeap)}`],
    ['app RSS before / after', `${mib(before.app)} / ${mib(after.app)}`],
    ['publish→write p50 / p99 (last proxy)', `${report.proxySinceLastStart.publishToWriteMs.p50 ?? 'n/a'} / ${report.proxySinceLastStart.publishToWriteMs.p99 ?? 'n/a'} ms`],
  ];
  process.stdout.write(`${formatTable(rows)}\n`);
  for (const failure of failures) process.stdout.write(`FAIL: ${failure}\n`);
  process.stdout.write(`report: ${out}\n`);
  if (keep) process.stdout.write(`run directory (database, logs): ${runDir}\n`);
  exitCode = report.ok ? 0 : 1;
} catch (err) {
  process.stderr.write(`\n[soak] aborted in phase ${phase}: ${(err as Error).stack ?? String(err)}\n`);
  process.stderr.write(`[soak] run directory kept: ${runDir}\n`);
  exitCode = 1;
} finally {
  clearInterval(progressTimer);
  await pool?.kill();
  await proxy?.stop(5_000);
  await app?.stop(5_000);
  if (exitCode === 0 && !options.keep) rmSync(runDir, { recursive: true, force: true });
}
process.exit(exitCode);
