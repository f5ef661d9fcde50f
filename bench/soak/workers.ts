/**
 * The soak's load-generator processes, seen from the orchestrator: fork them,
 * send every one a phase message, wait (with a deadline) for every one's answer.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { FromWorker, ToWorker, WorkerProgress } from './messages.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./load-worker.ts', import.meta.url));

type Answer<T extends FromWorker['type']> = Extract<FromWorker, { type: T }>;

class WorkerHandle {
  readonly inbox: FromWorker[] = [];
  private waiter: (() => void) | null = null;
  latest: WorkerProgress | null = null;
  exited = false;

  constructor(readonly child: ChildProcess, onError: (message: string) => void) {
    child.on('message', (message: FromWorker) => {
      if ('progress' in message) {
        this.latest = message.progress;
      }
      if (message.type === 'error') onError(message.message);
      if (message.type !== 'progress') this.inbox.push(message);
      this.waiter?.();
    });
    child.on('exit', () => {
      this.exited = true;
      this.waiter?.();
    });
  }

  async next<T extends FromWorker['type']>(type: T, deadline: number): Promise<Answer<T>> {
    for (;;) {
      const index = this.inbox.findIndex((m) => m.type === type);
      if (index >= 0) return this.inbox.splice(index, 1)[0] as Answer<T>;
      if (this.exited) throw new Error(`a load generator exited while the soak waited for "${type}"`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`a load generator did not answer "${type}" in time`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = null;
          resolve();
        };
      });
    }
  }
}

export class WorkerPool {
  readonly workers: WorkerHandle[];
  readonly errors: string[] = [];

  constructor(count: number, root: string) {
    this.workers = Array.from({ length: count }, () => {
      const child = fork(WORKER_SCRIPT, [], { cwd: root, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      return new WorkerHandle(child, (message) => this.errors.push(message));
    });
  }

  send(index: number, message: ToWorker): void {
    this.workers[index]!.child.send(message);
  }

  broadcast(message: ToWorker): void {
    for (const w of this.workers) w.child.send(message);
  }

  /** Every worker's next `type` answer, within `timeoutMs`. */
  all<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<Array<Answer<T>>> {
    const deadline = Date.now() + timeoutMs;
    return Promise.all(this.workers.map((w) => w.next(type, deadline)));
  }

  /** The latest counters of every worker, summed. */
  progress(): WorkerProgress {
    const sum: WorkerProgress = {
      clientsReady: 0, pollsAnswered: 0, pollErrors: 0, eventsReceived: 0, resyncs: 0, postsOk: 0, postsFailed: 0,
      joins: 0, leaves: 0, leavesAbandoned: 0, aborts: 0, clientsGivenUp: 0, inFlightActions: 0,
    };
    for (const w of this.workers) {
      if (w.latest === null) continue;
      for (const key of Object.keys(sum) as Array<keyof WorkerProgress>) sum[key] += w.latest[key];
    }
    return sum;
  }

  /** Kills the workers still running (after a failure), and waits for them to exit. */
  async kill(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.exited) return;
        const exited = once(w.child, 'exit');
        w.child.kill('SIGKILL');
        await exited;
      }),
    );
  }
}
