/**
 * Starts a scripted app and a real hold proxy in front of it, both on port 0,
 * with teardown registered on the test at once; plus a small HTTP client
 * (one connection per request, so nothing lingers), a control API client
 * holding the control secret, and `waitFor` (poll with a deadline, never a fixed sleep).
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { TestContext } from 'node:test';
import { createHoldProxy, type HoldProxy } from '../../proxy/proxy.js';
import type { ProxyOptions } from '../../proxy/options.js';
import { startScriptedApp, type ScriptedApp } from './scripted-app.js';

/** The Grip-Sig key the proxy signs with (the app's `secret`). */
export const TEST_SECRET = 'test-secret-0123456789abcdef';
/** The control API credential: a key of its own (docs/protocol.md §7). */
export const TEST_CONTROL_SECRET = 'test-control-secret-0123456789';

export interface HttpResult {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json(): unknown;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  signal?: AbortSignal;
}

/** One HTTP request on its own connection (`agent: false`); resolves with the whole response. */
export function request(url: string, { method = 'GET', headers = {}, body, signal }: RequestOptions = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false, ...(signal ? { signal } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          body: buf,
          text,
          json: () => JSON.parse(text) as unknown,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls `predicate` (sync or async) until it is true; rejects with `message` after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  { timeoutMs = 2000, message = 'condition' } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`waitFor: ${message} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export interface Harness {
  app: ScriptedApp;
  proxy: HoldProxy;
  /** `http://127.0.0.1:CLIENT_PORT` */
  clientUrl: string;
  /** `http://127.0.0.1:CONTROL_PORT` */
  controlUrl: string;
  /** A client request through the proxy. */
  get(path: string, opts?: RequestOptions): Promise<HttpResult>;
  /** POSTs JSON to the control API with `Authorization: Bearer <control secret>` unless `token` says otherwise. */
  control(path: string, body: unknown, opts?: { token?: string | null; contentType?: string; method?: string }): Promise<HttpResult>;
  /** Waits until the proxy has `n` requests parked. */
  waitParked(n: number): Promise<void>;
}

/** Starts app + proxy on port 0 and registers their teardown on `t`. */
export async function startHarness(t: TestContext, options: Partial<ProxyOptions> = {}): Promise<Harness> {
  const app = await startScriptedApp();
  t.after(() => app.close());
  const proxy = createHoldProxy({
    upstreamUrl: app.url,
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    clientPort: 0,
    controlPort: 0,
    ...options,
  });
  t.after(() => proxy.close());
  const { clientPort, controlPort } = await proxy.listen();
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const controlUrl = `http://127.0.0.1:${controlPort}`;
  return {
    app,
    proxy,
    clientUrl,
    controlUrl,
    get: (path, opts) => request(clientUrl + path, opts),
    control: (path, body, { token = TEST_CONTROL_SECRET, contentType = 'application/json', method = 'POST' } = {}) => {
      const headers: Record<string, string> = { 'content-type': contentType };
      if (token !== null) headers.authorization = `Bearer ${token}`;
      return request(controlUrl + path, { method, headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
    },
    waitParked: (n) => waitFor(() => proxy.stats().parked === n, { message: `${n} parked request(s)` }),
  };
}

/** An `http-response` format with a JSON body. */
export function jsonFormat(body: unknown, extra: Record<string, unknown> = {}): { 'http-response': Record<string, unknown> } {
  return { 'http-response': { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...extra } };
}
