/**
 * The accept queue of the target's own client port over the park phase: how many connections the kernel had
 * completed that the server had not yet taken (`accept()`), at most and for how long the queue was full.
 *
 * `ListenOverflows` (listen-overflows.ts) is machine-wide: on a shared machine another process's storm counts
 * too, and it cannot tell the target's queue from its backend's. This reads the target's listening socket
 * alone: in /proc/net/tcp a LISTEN row's `rx_queue` is the queue's length now; its size (the `listen()` backlog
 * as the kernel capped it at `net.core.somaxconn`) is read once from `ss`, which /proc does not show. A queue
 * past its size drops the next SYN, whose client retries 1 s later (then 3, 7, 15 s): a park that ran with a
 * full queue measured those waits.
 *
 * Listening sockets come first in /proc/net/tcp, so a sample reads the file only until the first row in
 * another state: cheap beside 10,000 open connections.
 */
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';

/** LISTEN in /proc/net/tcp's `st` column. */
const LISTEN = '0A';
/** Most bytes one sample reads: the listening rows of a busy machine fit many times over. */
const READ_BYTES = 256 * 1024;
/** Default time between samples, ms. */
export const ACCEPT_QUEUE_SAMPLE_MS = 50;

export interface AcceptQueueSummary {
  /** Longest queue seen. */
  peak: number;
  /** The queue's size (the kernel's cap of the `listen()` backlog); 0 when `ss` could not tell. */
  backlog: number;
  /** Time the queue was seen full (each sample at its size counts the interval before it), ms; 0 without `backlog`. */
  fullMs: number;
  /** Samples taken (0: the port was never found listening, or not Linux). */
  samples: number;
}

/**
 * Connections waiting to be accepted on the listening sockets of `port` (any local address, summed) in `text`
 * (the rows of /proc/net/tcp or tcp6), or undefined if none listens. Pure.
 */
export function parseAcceptQueue(text: string, port: number): number | undefined {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  let found: number | undefined;
  for (const line of text.split('\n')) {
    // "  12: 0100007F:1F90 00000000:0000 0A 00000000:00000000 ..."
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5 || !fields[0]!.endsWith(':')) continue;
    if (fields[3] !== LISTEN) break; // listening rows come first
    if (!fields[1]!.endsWith(`:${portHex}`)) continue;
    found = (found ?? 0) + parseInt(fields[4]!.split(':')[1]!, 16);
  }
  return found;
}

async function readHead(path: string): Promise<string> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(READ_BYTES);
    let length = 0;
    // seq_file hands out a page or so per read: read until the buffer is full or the file ends.
    for (let i = 0; i < 256 && length < buffer.length; i++) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length).toString('latin1');
  } finally {
    await file.close();
  }
}

/** `port`'s accept queue now (IPv4 and IPv6 listeners), or undefined if it has none or the files are absent. */
export async function readAcceptQueue(port: number): Promise<number | undefined> {
  let total: number | undefined;
  for (const path of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readHead(path);
    } catch {
      continue;
    }
    const queued = parseAcceptQueue(text, port);
    if (queued !== undefined) total = (total ?? 0) + queued;
  }
  return total;
}

/** The size of `port`'s accept queue (summed over its listeners, `ss`'s Send-Q of a LISTEN row), or undefined. */
export function listenBacklog(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile('ss', ['-ltnH', `sport = :${port}`], { timeout: 5000 }, (err, stdout) => {
      if (err !== null) return resolve(undefined);
      // "LISTEN 0 4096 127.0.0.1:8080 0.0.0.0:*"
      const sizes = stdout.split('\n').map((line) => line.trim().split(/\s+/)).filter((f) => f.length >= 4).map((f) => Number(f[2]));
      resolve(sizes.length > 0 && sizes.every(Number.isInteger) ? sizes.reduce((a, b) => a + b, 0) : undefined);
    });
  });
}

/**
 * Samples the accept queues of `ports` (summed) every `intervalMs` until `stop()`, which resolves with the summary.
 * Sampling is sequential (one read at a time), so a slow read stretches the interval rather than piling up.
 */
export function watchAcceptQueue(ports: readonly number[], intervalMs = ACCEPT_QUEUE_SAMPLE_MS): { stop(): Promise<AcceptQueueSummary> } {
  const summary: AcceptQueueSummary = { peak: 0, backlog: 0, fullMs: 0, samples: 0 };
  let stopped = false;
  let last = Date.now();
  const loop = (async () => {
    const sizes = await Promise.all(ports.map((port) => listenBacklog(port)));
    summary.backlog = sizes.every((size) => size !== undefined) ? sizes.reduce((a, b) => a! + b!, 0)! : 0;
    last = Date.now();
    while (!stopped) {
      let queued = 0;
      let seen = false;
      for (const port of ports) {
        const reading = await readAcceptQueue(port);
        if (reading === undefined) continue;
        seen = true;
        queued += reading;
      }
      const now = Date.now();
      if (seen) {
        summary.samples++;
        summary.peak = Math.max(summary.peak, queued);
        if (summary.backlog > 0 && queued >= summary.backlog) summary.fullMs += now - last;
      }
      last = now;
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return summary;
    },
  };
}
