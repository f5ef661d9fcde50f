/**
 * The HTTP/1.1 client of one simulated lab client: its own keep-alive agent
 * (one socket, as a browser tab's poll would use), its own cookies, an optional
 * loopback source address, a deadline on every request, and abort on `stop()`.
 *
 * It counts what the client costs on the wire: requests sent and bytes in both
 * directions, headers included, read from the sockets themselves. Each socket
 * counts once: live sockets at their current counts, closed ones at their final
 * counts (a keep-alive socket serves many requests).
 */
import http from 'node:http';
import type net from 'node:net';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body as UTF-8 text (for a stream: empty unless the status was not 200). */
  body: string;
}

export interface RequestInit {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** A JSON body (sets `Content-Type: application/json`). */
  json?: unknown;
  /** A text body with its content type. */
  text?: { body: string; contentType: string };
  /** Buffered request: longest wait for the whole answer. Stream: longest silence. Default: the client's `requestTimeoutMs`. */
  timeoutMs?: number;
  /** Called once the request is written to its socket. */
  onSent?: () => void;
}

/** The request was aborted by `stop()`: not a failure of the server. */
export class RequestAbortedError extends Error {
  override name = 'RequestAbortedError';
  readonly code = 'LAB_ERR_ABORTED';
}

export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
  readonly code = 'LAB_ERR_TIMEOUT';
}

export class AnswerTooLargeError extends Error {
  override name = 'AnswerTooLargeError';
  readonly code = 'LAB_ERR_ANSWER_TOO_LARGE';
}

export interface HttpClientOptions {
  /** `http://host:port[/prefix]`; request paths are appended to it. */
  baseUrl: string;
  /** Source address of the client's sockets (a loopback address: ephemeral ports are per source address). */
  localAddress?: string | undefined;
  /** Default deadline of a request, ms. */
  requestTimeoutMs: number;
  /** Sockets at once (the publisher: one per room). Default 1. */
  maxSockets?: number;
}

/** Largest buffered answer: a chat poll answer is at most 500 events (~100 KB); far beyond that something is wrong. */
const MAX_BODY_CHARS = 32 * 1024 * 1024;

export class HttpClient {
  /** Requests sent (each stream (re)connection counts one). */
  requests = 0;
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;
  private readonly prefix: string;
  private readonly cookies = new Map<string, string>();
  /** Open requests and how to fail each one (stop() aborts them all). */
  private readonly active = new Map<http.ClientRequest, (err: Error) => void>();
  private readonly live = new Set<net.Socket>();
  private closedBytes = 0;
  private stopped = false;

  constructor(private readonly options: HttpClientOptions) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'http:') throw new Error(`lab clients speak plain http, got ${options.baseUrl}`);
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = url.port === '' ? 80 : Number(url.port);
    this.prefix = url.pathname.replace(/\/+$/, '');
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 1, maxFreeSockets: options.maxSockets ?? 1 });
  }

  /** Bytes read and written on every socket this client used, headers included. */
  bytes(): number {
    let total = this.closedBytes;
    for (const socket of this.live) total += socket.bytesRead + socket.bytesWritten;
    return total;
  }

  /** The value of cookie `name` the server set, if any. */
  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  /** One request; resolves with the whole answer, whatever its status. Rejects on network errors, timeout and stop. */
  request(path: string, init: RequestInit = {}): Promise<HttpAnswer> {
    return this.send(path, init, undefined);
  }

  /**
   * A streaming request: a 200 answer's body goes to `onChunk` as it arrives
   * (UTF-8, split anywhere) and the promise resolves when the server ends it;
   * any other status is buffered into `body`. The timeout is the longest
   * silence. A throw from `onChunk` fails the request.
   */
  stream(path: string, init: RequestInit, onChunk: (text: string) => void): Promise<HttpAnswer> {
    return this.send(path, init, onChunk);
  }

  /**
   * Closes the kept-alive sockets no request uses, so the next request opens a new connection. A socket left idle
   * longer than the server's keep-alive timeout may be closing under us: a request written to it meets a reset
   * (browsers retry such a request; counting it as an error would blame the server for the generator's stale
   * socket).
   */
  dropIdleSockets(): void {
    for (const sockets of Object.values(this.agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
  }

  /** Aborts every open request (they reject with `RequestAbortedError`) and closes the sockets. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const fail of [...this.active.values()]) fail(new RequestAbortedError('stopped'));
    this.agent.destroy();
  }

  private send(path: string, init: RequestInit, onChunk: ((text: string) => void) | undefined): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      if (this.stopped) {
        reject(new RequestAbortedError('stopped'));
        return;
      }
      const headers: Record<string, string> = { ...init.headers };
      let body: Buffer | undefined;
      if (init.json !== undefined) {
        body = Buffer.from(JSON.stringify(init.json));
        headers['content-type'] = 'application/json';
      } else if (init.text !== undefined) {
        body = Buffer.from(init.text.body);
        headers['content-type'] = init.text.contentType;
      }
      if (body !== undefined) headers['content-length'] = String(body.length);
      if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');

      const req = http.request({
        host: this.host,
        port: this.port,
        path: this.prefix + path,
        method: init.method ?? 'GET',
        headers,
        agent: this.agent,
        ...(this.options.localAddress === undefined ? {} : { localAddress: this.options.localAddress }),
      });
      this.requests++;

      let settled = false;
      let failure: Error | null = null;
      const timeoutMs = init.timeoutMs ?? this.options.requestTimeoutMs;
      const settle = (err: Error | null, answer?: HttpAnswer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.active.delete(req);
        if (err !== null) reject(err);
        else resolve(answer!);
      };
      const fail = (err: Error): void => {
        failure ??= err;
        req.destroy(err);
        settle(err);
      };
      const timer = setTimeout(() => fail(new RequestTimeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.active.set(req, fail);

      req.on('socket', (socket) => this.track(socket));
      if (init.onSent !== undefined) req.once('finish', init.onSent);
      req.on('error', (err) => settle(failure ?? err));
      req.on('response', (res) => {
        this.keepCookies(res.headers['set-cookie']);
        const status = res.statusCode ?? 0;
        const streaming = onChunk !== undefined && status === 200;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (streaming) {
            // The deadline of a stream is its longest silence.
            timer.refresh();
            try {
              onChunk(chunk);
            } catch (err) {
              fail(err as Error);
            }
            return;
          }
          text += chunk;
          if (text.length > MAX_BODY_CHARS) fail(new AnswerTooLargeError(`answer over ${MAX_BODY_CHARS} characters`));
        });
        res.on('end', () => settle(null, { status, headers: res.headers, body: text }));
        res.on('error', (err) => settle(failure ?? err));
        res.on('close', () => {
          if (!res.complete) settle(failure ?? new Error('answer cut short'));
        });
      });
      req.end(body);
    });
  }

  private track(socket: net.Socket): void {
    if (this.live.has(socket)) return;
    this.live.add(socket);
    socket.once('close', () => {
      this.live.delete(socket);
      this.closedBytes += socket.bytesRead + socket.bytesWritten;
    });
  }

  private keepCookies(setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) {
      const pair = line.split(';', 1)[0]!;
      const eq = pair.indexOf('=');
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }
}
