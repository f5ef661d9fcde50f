/**
 * The lab's soak scenario (`npm run bench -- --scenario soak`, `npm run soak`): a bounded end-to-end run on
 * loopback (docs/operations.md, "Soak") of a Suspend & Push target started by the lab (bench/models/suspend-push.ts)
 * with the soak's clients in the lab's load-worker processes (soak-role.ts). Phases:
 * setup (clients sign in, join rooms, park) → churn for --duration (posts, aborted polls, joins and leaves at
 * random; the proxy restarted at 1/3, the app at 2/3, each with SIGTERM and started again on the same ports and
 * database by the target's `restart`) → quiesce (actions finish) → catch-up (every client reaches its rooms' last
 * events) → stop → verify: the database is the ground truth (deliveries.ts).
 *
 * Progress goes to stderr, the table to stdout and the JSON report to `<out>/<timestamp>/soak-<target>.json`.
 * The caller (bench/lab/main.ts) exits 1 when anything was lost or duplicated, requests were still parked at the
 * end, or nothing was committed.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProxyStats } from '../../../protocol/control-api.js';
import { rssBytes } from '../../models/process-tree.js';
import type { RunningTarget, Target } from '../../models/target.js';
import type { LabOptions } from '../options.js';
import type { Provenance } from '../provenance.js';
import { checkDeliveries, formatTable, mib, type EventRow } from './deliveries.js';
import { histogramQuantile, parsePromText, type Sample } from './prom-text.js';
import { sleep } from './soak-client.js';
import { SoakClients } from './soak-clients.js';

/** Longest wait for the clients' actions in flight to end at quiesce, ms (and the call's margin on top). */
const QUIESCE_MS = 60_000;
const CALL_MARGIN_MS = 30_000;

export interface SoakContext {
  root: string;
  options: LabOptions;
  /** This run's results directory, `<out>/<timestamp>/`. */
  dir: string;
  command: string;
  provenance: Provenance;
}

export interface SoakOutcome {
  ok: boolean;
  reportPath: string;
}

interface Restart {
  target: 'proxy' | 'app';
  atS: number;
  /** SIGTERM to exit (graceful shutdown), then exit to ready (start-up), and their sum. */
  stopMs: number;
  startMs: number;
  downtimeMs: number;
  exitCode: number | null;
}

/** Runs the soak against `target`; never throws for a failed run (the report says why), only for a bug. */
export async function runSoak(target: Target, ctx: SoakContext): Promise<SoakOutcome> {
  const { options, root } = ctx;
  const soak = options.soak!;
  const clientCount = options.clients[0]!;
  const startedAt = new Date();
  const started = Date.now();
  const elapsedS = () => ((Date.now() - started) / 1000).toFixed(0);
  const workDir = mkdtempSync(join(tmpdir(), `lab-soak-${target.name}-`));
  const dbPath = join(workDir, 'chat.db');
  const rooms = Array.from({ length: options.rooms }, (_, i) => `soak-${String(i).padStart(2, '0')}`);
  const reportPath = join(ctx.dir, `soak-${target.name}.json`);
  const failures: string[] = [];
  let phase = 'start';
  let running: RunningTarget | null = null;
  let clients: SoakClients | null = null;
  let lastParked: number | null = null;

  // --- progress on stderr ------------------------------------------------------------------
  function status(): string {
    const p = clients?.progress();
    const parts = [`[soak] ${phase.padEnd(9)} ${elapsedS().padStart(4)}s`];
    if (p) {
      parts.push(
        `ready ${p.clientsReady}/${clientCount}`,
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
  const tty = options.progress;
  let lastLine = 0;
  const progressTimer = setInterval(() => {
    if (tty) process.stderr.write(`\r\x1b[K${status()}`);
    else if (Date.now() - lastLine >= 5_000) {
      lastLine = Date.now();
      process.stderr.write(`${status()}\n`);
    }
  }, 1_000);
  const say = (text: string): void => {
    process.stderr.write(`${tty ? '\r\x1b[K' : ''}[soak] ${elapsedS().padStart(4)}s ${text}\n`);
  };

  // --- the target's control API and database -------------------------------------------------
  async function control(path: string): Promise<Response> {
    const { url, secret } = running!.control!;
    return fetch(`${url}${path}`, { headers: { authorization: `Bearer ${secret}` }, signal: AbortSignal.timeout(5_000) });
  }
  async function proxyStats(): Promise<ProxyStats | null> {
    try {
      const res = await control('/stats');
      return res.ok ? ((await res.json()) as ProxyStats) : null;
    } catch {
      return null;
    }
  }
  async function proxyMetrics(): Promise<Sample[]> {
    try {
      const res = await control('/metrics');
      return res.ok ? parsePromText(await res.text()) : [];
    } catch {
      return [];
    }
  }
  const heapUsed = (samples: Sample[]): number | null =>
    samples.find((s) => s.name === 'comet_proxy_nodejs_heap_size_used_bytes')?.value ?? null;
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
  const memory = () => {
    const roles = running!.roles();
    return { proxy: rssBytes([roles.proxy!]), app: rssBytes([roles.app!]), proxyPid: roles.proxy!, appPid: roles.app! };
  };

  const restarts: Restart[] = [];
  async function restart(role: 'proxy' | 'app'): Promise<void> {
    const atS = (Date.now() - started) / 1000;
    say(`restarting the ${role} (SIGTERM, then start on the same port${role === 'app' ? ' and database' : ''})`);
    const r = await running!.restart!(role);
    restarts.push({ target: role, atS, stopMs: r.stopMs, startMs: r.startMs, downtimeMs: r.stopMs + r.startMs, exitCode: r.exitCode });
    if (r.exitCode !== 0) failures.push(`the ${role} exited with code ${r.exitCode} on SIGTERM`);
    say(`${role} back after ${r.stopMs + r.startMs} ms (shutdown ${r.stopMs} ms, start ${r.startMs} ms)`);
  }

  // Ctrl-C (or a test's SIGTERM): take the target and the workers down with us.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n[soak] ${signal}: stopping the target and the load generators\n`);
    void Promise.allSettled([clients?.kill(), running?.stop()]).then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let ok = false;
  try {
    say(`${target.name}: ${clientCount} clients in ${soak.workers} load worker(s), ${options.rooms} rooms, ${options.durationS} s of churn, seed ${soak.seed}; work dir ${workDir}`);
    const reason = await target.unavailable();
    if (reason !== null) throw new Error(`${target.name} is unavailable: ${reason}`);
    running = await target.start({ workDir, holdTimeoutS: options.holdTimeoutS, maxClients: clientCount, root });
    if (running.restart === undefined || running.control === undefined) throw new Error(`${target.name} cannot restart its processes or has no control API`);

    phase = 'setup';
    const pollTimeoutMs = (options.holdTimeoutS + 15) * 1000;
    clients = await SoakClients.start(root, { clientUrl: running.clientUrl, clients: clientCount, rooms, soak, pollTimeoutMs });
    await clients.setup(60_000 + clientCount * 20);
    await clients.poll(readLastIds(), 10_000);
    await watchStats((s) => s.parked >= clientCount * 0.95, 30_000);
    const before = { ...memory(), proxyHeap: heapUsed(await proxyMetrics()) };
    say(`setup done: ${lastParked} parked; RSS proxy ${mib(before.proxy)}, app ${mib(before.app)}`);

    phase = 'churn';
    const churnStart = Date.now();
    const churnMs = options.durationS * 1000;
    await clients.churn(10_000);
    const pending: Array<['proxy' | 'app', number]> = soak.restarts ? [['proxy', churnMs / 3], ['app', (2 * churnMs) / 3]] : [];
    // Churn lasts until both restarts happened, even past --duration: on a busy machine the first restart can take
    // longer than the rest of the phase, and the old soak then skipped the app's restart without a word.
    while (Date.now() - churnStart < churnMs || pending.length > 0) {
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
    await clients.quiesce(QUIESCE_MS, QUIESCE_MS + CALL_MARGIN_MS);

    phase = 'catch-up';
    const lastIds = readLastIds();
    const catchUpTimeoutMs = (options.holdTimeoutS + 15) * 1000;
    const { behind, ms: catchUpMs } = await clients.catchUp(lastIds, catchUpTimeoutMs, catchUpTimeoutMs + 10_000);
    if (behind > 0) failures.push(`${behind} client(s) still behind their rooms' last events after ${catchUpTimeoutMs} ms`);
    say(`catch-up: ${behind} client(s) behind after ${catchUpMs} ms`);

    const samples = await proxyMetrics();
    const after = { ...memory(), proxyHeap: heapUsed(samples) };
    const statsAtEnd = await proxyStats();

    phase = 'stop';
    const stopped = await clients.stop(60_000);
    const finalProgress = stopped.progress;
    // Every client is gone: the proxy must have let go of every parked request.
    const parkedStats = await watchStats((s) => s.parked === 0 && s.reasking === 0, 10_000);
    const parkedAtEnd = parkedStats === null ? -1 : parkedStats.parked + parkedStats.reasking;

    phase = 'shutdown';
    await running.stop();
    for (const [role, code] of Object.entries((await running.exitCodes?.()) ?? {})) {
      if (code !== 0) failures.push(`the ${role} exited with code ${code} at the end`);
    }

    phase = 'verify';
    const events = readDb((db) =>
      db.prepare('SELECT e.id AS id, r.name AS room, e.type AS type FROM events e JOIN rooms r ON r.id = e.room_id').all() as EventRow[],
    );
    const outboxLeft = readDb((db) => (db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n);
    const check = checkDeliveries(events, lastIds, stopped.clients);

    if (check.lost !== 0) failures.push(`${check.lost} expected deliveries lost`);
    if (check.duplicated !== 0) failures.push(`${check.duplicated} duplicated deliveries`);
    if (check.unknown !== 0) failures.push(`${check.unknown} received event ids are not in the database`);
    if (parkedAtEnd !== 0) failures.push(`${parkedAtEnd} request(s) still parked or re-asking after the clients stopped`);
    if (check.committedMessages === 0) failures.push('no message was committed');
    if (stopped.errors.length > 0) failures.push(`load generator errors: ${stopped.errors.slice(0, 3).join(' / ')}`);

    const errorsByCode = Object.fromEntries(
      samples.filter((s) => s.name === 'comet_proxy_errors_total' && s.value > 0).map((s) => [s.labels.code ?? '?', s.value]),
    );
    const ms = (seconds: number | undefined) => (seconds === undefined ? null : Math.round(seconds * 100_000) / 100);
    const report = {
      ok: failures.length === 0,
      failures,
      target: target.name,
      command: ctx.command,
      provenance: ctx.provenance,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      wallS: Math.round((Date.now() - started) / 100) / 10,
      options: {
        durationS: options.durationS,
        clients: clientCount,
        rooms: options.rooms,
        holdTimeoutS: options.holdTimeoutS,
        smoke: options.smoke,
        ...soak,
      },
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
      clients: { total: stopped.clients.length, behindAfterCatchUp: behind, catchUpMs, ...finalProgress },
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
    const keep = soak.keep || !report.ok;
    if (keep) report.runDir = workDir;
    writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`);

    clearInterval(progressTimer);
    if (tty) process.stderr.write('\r\x1b[K');
    const rows: Array<[string, string | number]> = [
      ['result', report.ok ? 'PASS' : 'FAIL'],
      ['target', target.name],
      ['churn / wall time', `${options.durationS} s / ${report.wallS} s`],
      ['clients (load generators)', `${clientCount} (${soak.workers})`],
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
    process.stdout.write(`report: ${reportPath}\n`);
    if (keep) process.stdout.write(`work directory (database, logs): ${workDir}\n`);
    ok = report.ok;
  } catch (err) {
    clearInterval(progressTimer);
    const message = `aborted in phase ${phase}: ${(err as Error).stack ?? String(err)}`;
    process.stderr.write(`\n[soak] ${message}\n[soak] work directory kept: ${workDir}\n`);
    writeFileSync(reportPath, `${JSON.stringify({ ok: false, failures: [...failures, message], target: target.name, command: ctx.command, runDir: workDir }, null, 2)}\n`);
  } finally {
    clearInterval(progressTimer);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await clients?.kill();
    await running?.stop();
    if (ok && !soak.keep) rmSync(workDir, { recursive: true, force: true });
  }
  return { ok, reportPath };
}

/** The scenario over every selected target, one after the other; exit code 0 when every run passed, else 1. */
export async function runSoakScenario(targets: readonly Target[], ctx: SoakContext): Promise<number> {
  let allOk = true;
  const reports: string[] = [];
  for (const target of targets) {
    const outcome = await runSoak(target, ctx);
    allOk &&= outcome.ok;
    reports.push(outcome.reportPath);
  }
  process.stdout.write(`${reports.join('\n')}\n`);
  return allOk ? 0 : 1;
}
