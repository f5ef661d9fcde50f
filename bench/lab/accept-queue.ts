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
const READ_BYTES = 64 * 1024;
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
 * (the rows of /proc/net/tcp), or undefined if none listens. Pure.
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

/**
 * The listening rows at the head of /proc/net/tcp: read a page at a time and stopped at the first row in another
 * state, because the kernel walks its socket tables as the file is read (reading it whole with 20,000 connections
 * open costs milliseconds of CPU per sample, and /proc/net/tcp6 walks every socket to find none: the lab's targets
 * listen on 127.0.0.1).
 */
async function listeningRows(): Promise<string> {
  const file = await open('/proc/net/tcp', 'r');
  try {
    const buffer = Buffer.alloc(READ_BYTES);
    let length = 0;
    for (let i = 0; i < READ_BYTES / 4096 && length < buffer.length; i++) {
      const { bytesRead } = await file.read(buffer, length, Math.min(4096, buffer.length - length), null);
      if (bytesRead === 0) break;
      const chunk = buffer.toString('latin1', length, length + bytesRead);
      length += bytesRead;
      if (/^\s*\d+: \S+ \S+ (?!0A)[0-9A-F]{2} /m.test(chunk)) break;
    }
    return buffer.toString('latin1', 0, length);
  } finally {
    await file.close();
  }
}

/** `port`'s accept queue now (IPv4 listeners), or undefined if it has none or /proc/net/tcp is absent. */
export async function readAcceptQueue(port: number): Promise<number | undefined> {
  let text: string;
  try {
    text = await listeningRows();
  } catch {
    return undefined;
  }
  return parseAcceptQueue(text, port);
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
 * Sampling starts at once and is sequential (a slow read stretches the interval rather than piling up); the
 * queue's size is read beside it (`ss` is a process start), and the time full is worked out at the end.
 */
export function watchAcceptQueue(
  ports: readonly number[],
  intervalMs = ACCEPT_QUEUE_SAMPLE_MS,
): { stop(): Promise<AcceptQueueSummary>; samplesAtLeast(queued: number): number } {
  let stopped = false;
  const backlog = Promise.all(ports.map((port) => listenBacklog(port))).then((sizes) =>
    sizes.every((size) => size !== undefined) ? sizes.reduce((a, b) => a! + b!, 0)! : 0,
  );
  /** Per sample: the queue and the ms since the previous one (bounded: one per interval until stop). */
  const samples: Array<{ queued: number; ms: number }> = [];
  const loop = (async () => {
    let last = Date.now();
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
      if (seen) samples.push({ queued, ms: now - last });
      last = now;
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    /** Samples so far that read at least `queued` (lets a caller wait for the watch to have seen a state). */
    samplesAtLeast(queued: number) {
      return samples.reduce((n, sample) => n + (sample.queued >= queued ? 1 : 0), 0);
    },
    async stop() {
      stopped = true;
      await loop;
      const size = await backlog;
      return {
        peak: samples.reduce((peak, sample) => Math.max(peak, sample.queued), 0),
        backlog: size,
        fullMs: size > 0 ? samples.reduce((ms, sample) => ms + (sample.queued >= size ? sample.ms : 0), 0) : 0,
        samples: samples.length,
      };
    },
  };
}
