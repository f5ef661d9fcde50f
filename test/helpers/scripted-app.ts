/**
 * A real GRIP app for proxy tests: a node:http server on 127.0.0.1:0 whose
 * handler each test scripts (`app.handle = (req, res) => ...`). It records
 * every request it receives (headers, including Grip-Sig and Grip-Last, and the
 * body) and lets a test wait for the Nth one.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type AppHandler = (req: RecordedRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>;

export interface ScriptedApp {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** Every request received so far, in order. */
  readonly requests: RecordedRequest[];
  /** The script; default answers 200 `ok`. */
  handle: AppHandler;
  /** Resolves with the `n`th request (1-based) once it has arrived; rejects after `timeoutMs`. */
  waitForRequest(n: number, opts?: { timeoutMs?: number }): Promise<RecordedRequest>;
  close(): Promise<void>;
}

/** The parts of a hold instruction a test sets; headers are written as given. */
export interface HoldSpec {
  /** Grip-Channel value(s); each array entry becomes its own header line. */
  channel?: string | string[];
  connectionId?: string;
  /** Grip-Timeout, seconds. */
  timeoutS?: number;
  /** Grip-Status, e.g. `304` or `202 Held Back`. */
  status?: string;
  /** Status of the held response itself. Default 200. */
  code?: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Writes a hold instruction (`Grip-Hold: response`) with the held response. */
export function writeHold(res: ServerResponse, spec: HoldSpec = {}): void {
  const headers: Array<[string, string]> = [['Grip-Hold', 'response']];
  for (const channel of [spec.channel ?? []].flat()) headers.push(['Grip-Channel', channel]);
  if (spec.connectionId !== undefined) headers.push(['Grip-Connection-Id', spec.connectionId]);
  if (spec.timeoutS !== undefined) headers.push(['Grip-Timeout', String(spec.timeoutS)]);
  if (spec.status !== undefined) headers.push(['Grip-Status', spec.status]);
  headers.push(['Content-Type', 'application/json']);
  for (const [name, value] of Object.entries(spec.headers ?? {})) headers.push([name, value]);
  res.writeHead(spec.code ?? 200, headers.flat());
  res.end(spec.body ?? '{"events":[]}');
}

export async function startScriptedApp(): Promise<ScriptedApp> {
  const requests: RecordedRequest[] = [];
  const waiters: Array<{ n: number; resolve: (r: RecordedRequest) => void }> = [];

  const server = createServer((raw, res) => {
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => {
      const recorded: RecordedRequest = {
        method: raw.method ?? '',
        url: raw.url ?? '',
        headers: raw.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(recorded);
      for (const w of waiters.filter((w) => w.n <= requests.length)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(requests[w.n - 1]!);
      }
      Promise.resolve(app.handle(recorded, res, raw)).catch((err: unknown) => {
        res.destroy(err as Error);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const app: ScriptedApp = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    handle: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    },
    waitForRequest(n, { timeoutMs = 2000 } = {}) {
      const existing = requests[n - 1];
      if (existing !== undefined) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`scripted app: request #${n} did not arrive within ${timeoutMs} ms (got ${requests.length})`));
        }, timeoutMs);
        const waiter = {
          n,
          resolve: (r: RecordedRequest) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        waiters.push(waiter);
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return app;
}
