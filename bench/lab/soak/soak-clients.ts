/**
 * The soak's clients seen from the orchestrator (run-soak.ts): the lab's load-worker processes
 * (bench/lab/load-workers.ts `WorkerProcess`) in the soak role, client w*… in worker w, each worker's sockets
 * bound to its own loopback address 127.0.0.(10+w) like the lab's subscribers. Every call has a deadline; a
 * worker that exits while a call waits makes that call reject with a message naming it.
 */
import { FIRST_SUBSCRIBER_HOST, loopbackSource, MAX_WORKERS, startAll, WorkerProcess } from '../load-workers.js';
import type { SoakOptions } from './soak-options.js';
import { type ClientRecord, emptySoakProgress, type SoakProgress } from './soak-messages.js';

export interface SoakClientsSpec {
  clientUrl: string;
  clients: number;
  rooms: string[];
  soak: SoakOptions;
  /** Poll requests give up after this long, ms (the proxy answers within the hold timeout). */
  pollTimeoutMs: number;
}

export class SoakClients {
  private constructor(private readonly workers: WorkerProcess[]) {}

  /** Forks `spec.soak.workers` soak workers and waits until each has loaded. */
  static async start(root: string, spec: SoakClientsSpec): Promise<SoakClients> {
    const { workers, seed } = spec.soak;
    if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS || workers > spec.clients) {
      throw new Error(`soak: workers must be an integer from 1 to min(${MAX_WORKERS}, clients), got ${workers}`);
    }
    const share = (total: number) => total / workers;
    const handles = Array.from({ length: workers }, (_, w) => {
      const localAddress = loopbackSource(spec.clientUrl, FIRST_SUBSCRIBER_HOST + w);
      return new WorkerProcess(`soak ${w}${localAddress === undefined ? '' : ` (${localAddress})`}`, root, {
        role: 'soak',
        worker: w,
        clientUrl: spec.clientUrl,
        clients: Math.floor(spec.clients / workers) + (w < spec.clients % workers ? 1 : 0),
        rooms: [...spec.rooms],
        initialRoomsMin: spec.soak.initialRoomsMin,
        initialRoomsMax: spec.soak.initialRoomsMax,
        postsPerS: share(spec.soak.postsPerS),
        joinsLeavesPerS: share(spec.soak.joinsLeavesPerS),
        abortsPerS: share(spec.soak.abortsPerS),
        seed: seed * 1000 + w,
        pollTimeoutMs: spec.pollTimeoutMs,
        localAddress,
      });
    });
    await startAll(handles);
    return new SoakClients(handles);
  }

  pids(): number[] {
    return this.workers.map((w) => w.pid);
  }

  /** The latest counters of every worker, summed. */
  progress(): SoakProgress {
    const sum = emptySoakProgress();
    for (const w of this.workers) {
      const latest = w.latest?.soak;
      if (latest === undefined) continue;
      for (const key of Object.keys(sum) as Array<keyof SoakProgress>) sum[key] += latest[key];
    }
    return sum;
  }

  async setup(timeoutMs: number): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call('setup', { timeoutMs }, timeoutMs)));
  }

  async poll(lastIds: Record<string, number>, timeoutMs: number): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call('soak-poll', { lastIds, timeoutMs }, timeoutMs)));
  }

  async churn(timeoutMs: number): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call('soak-churn', { timeoutMs }, timeoutMs)));
  }

  /** Each worker waits up to `workerMs` for its actions in flight; the call itself up to `timeoutMs`. */
  async quiesce(workerMs: number, timeoutMs: number): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call('soak-quiesce', { timeoutMs: workerMs }, timeoutMs)));
  }

  /** Clients still behind `lastIds` after each worker waited up to `workerMs`, and the longest wait. */
  async catchUp(lastIds: Record<string, number>, workerMs: number, timeoutMs: number): Promise<{ behind: number; ms: number }> {
    const answers = await Promise.all(this.workers.map((w) => w.call('soak-catch-up', { lastIds, timeoutMs: workerMs }, timeoutMs)));
    return { behind: answers.reduce((n, a) => n + a.behind, 0), ms: Math.max(...answers.map((a) => a.ms)) };
  }

  /** Stops every client; their records, the summed final counters and the workers' action errors. */
  async stop(timeoutMs: number): Promise<{ clients: ClientRecord[]; progress: SoakProgress; errors: string[] }> {
    const answers = await Promise.all(this.workers.map((w) => w.call('soak-stop', { timeoutMs }, timeoutMs)));
    const progress = emptySoakProgress();
    for (const a of answers) for (const key of Object.keys(progress) as Array<keyof SoakProgress>) progress[key] += a.progress[key];
    return { clients: answers.flatMap((a) => a.clients), progress, errors: answers.flatMap((a) => a.errors) };
  }

  async kill(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.kill()));
  }
}
