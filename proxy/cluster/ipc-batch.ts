/**
 * One IPC write per event-loop turn instead of one per message, in both
 * directions between the cluster primary and a worker (docs/scaleout.md
 * "Workers"). A fan-out makes every re-poll park, and every park under a
 * connection ID asks the primary for its queue (`take`): sent one by one, each
 * was a JSON write, a pipe syscall and a wake-up of the other process, which on
 * a machine with fewer cores than processes costs more than the park itself
 * (docs/performance.md "Issue 15", the profile of 2 workers). Messages sent in
 * the same turn leave together, in order, as one `batch` at `setImmediate`
 * (after the turn's I/O callbacks), so the channel's order is unchanged and a
 * message waits at most the rest of its turn.
 */
import { isMessage } from './messages.js';

/** What travels when a turn sent more than one message. */
export interface Batch<M> {
  k: 'batch';
  m: M[];
}

export class IpcBatcher<M extends { k: string }> {
  private queue: M[] = [];
  private scheduled = false;

  /** `write` sends one message on the channel (a worker's `process.send`, the primary's `worker.send`). */
  constructor(private readonly write: (message: M | Batch<M>) => void) {}

  send(message: M): void {
    this.queue.push(message);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Sends what is queued now (also called by the timer); a failing write is the caller's `write` to handle. */
  flush(): void {
    this.scheduled = false;
    const queue = this.queue;
    if (queue.length === 0) return;
    this.queue = [];
    this.write(queue.length === 1 ? queue[0]! : { k: 'batch', m: queue });
  }
}

/** Calls `each` for a message, or for every message of a batch, in order. */
export function unbatch(raw: unknown, each: (message: unknown) => void): void {
  if (isMessage(raw) && raw.k === 'batch' && Array.isArray((raw as Batch<unknown>).m)) {
    for (const message of (raw as Batch<unknown>).m) each(message);
  } else {
    each(raw);
  }
}
