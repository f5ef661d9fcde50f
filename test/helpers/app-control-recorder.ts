/**
 * A tiny real HTTP server standing in for the proxy's control API in the app's
 * tests: it records `POST /publish/` bodies, answers with a status the test
 * chooses, can hold its answers, and can go down and come back on the same
 * port. (The real proxy is exercised end to end in test/integration/.)
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import type { PublishItem } from '../../protocol/control-api.js';
import { defer } from './app-harness.js';

export interface RecordedPublish {
  authorization: string | undefined;
  contentType: string | undefined;
  items: PublishItem[];
}

export interface ControlRecorder {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Accepted publishes (answered 2xx), in arrival order. */
  readonly accepted: RecordedPublish[];
  /** The item ids of every publish request received, accepted or not, in arrival order. */
  readonly attemptItemIds: string[][];
  /** `performance.now()` at the arrival of each publish request. */
  readonly attemptTimes: number[];
  /** Status of the next answers; 2xx answers `{delivered: n, ...}` and counts as accepted. */
  status: number;
  /** Every accepted item, flattened in order. */
  items(): PublishItem[];
  /** Resolves once at least `count` items were accepted. */
  waitForItems(count: number, timeoutMs?: number): Promise<PublishItem[]>;
  /** Resolves once at least `count` publish requests arrived. */
  waitForAttempts(count: number, timeoutMs?: number): Promise<void>;
  /** Holds the answers to publishes until `resume()`. */
  pause(): void;
  resume(): void;
  /** Stops listening and drops connections: publishes now fail with ECONNREFUSED. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
}

export async function startControlRecorder(t: TestContext): Promise<ControlRecorder> {
  const changed = new EventEmitter();
  const accepted: RecordedPublish[] = [];
  const attemptItemIds: string[][] = [];
  const attemptTimes: number[] = [];
  let held: Array<() => void> | null = null;

  const recorder = { status: 200 };

  function answer(req: http.IncomingMessage, res: http.ServerResponse, items: PublishItem[]): void {
    const status = recorder.status;
    res.writeHead(status, { 'content-type': 'application/json' });
    if (status >= 200 && status < 300) {
      accepted.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], items });
      res.end(JSON.stringify({ delivered: items.length, queued: 0, dropped: 0, reasked: 0 }));
    } else {
      res.end(JSON.stringify({ code: 'TEST_UNAVAILABLE', message: `answering ${status}` }));
    }
    changed.emit('change');
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/publish/') {
        res.writeHead(404).end();
        return;
      }
      const { items } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { items: PublishItem[] };
      attemptItemIds.push(items.map((i) => i.id ?? ''));
      attemptTimes.push(performance.now());
      changed.emit('change');
      if (held) held.push(() => answer(req, res, items));
      else answer(req, res, items);
    });
  });

  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });

  const port = await listen(0);
  defer(t, close);

  const until = (what: string, done: () => boolean, timeoutMs: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        changed.off('change', check);
        resolve();
      };
      const timer = setTimeout(() => {
        changed.off('change', check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      changed.on('change', check);
      check();
    });

  const items = (): PublishItem[] => accepted.flatMap((p) => p.items);
  return Object.assign(recorder, {
    url: `http://127.0.0.1:${port}`,
    accepted,
    attemptItemIds,
    attemptTimes,
    items,
    async waitForItems(count: number, timeoutMs = 5000) {
      await until(`${count} accepted items (got ${items().length})`, () => items().length >= count, timeoutMs);
      return items();
    },
    waitForAttempts(count: number, timeoutMs = 5000) {
      return until(`${count} publish attempts`, () => attemptItemIds.length >= count, timeoutMs);
    },
    pause() {
      held ??= [];
    },
    resume() {
      const pending = held ?? [];
      held = null;
      for (const send of pending) send();
    },
    down: close,
    async up() {
      await listen(port);
    },
  });
}
