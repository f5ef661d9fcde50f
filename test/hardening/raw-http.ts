/**
 * Raw HTTP/1.1 over a TCP socket, for requests `fetch` and `http.request` refuse
 * to send (bad request lines, NUL bytes, duplicate or oversized headers, invalid
 * UTF-8, smuggling framing), and a small response parser. Plus a pino logger
 * whose lines stay in memory, for assertions on what was logged.
 */
import { connect } from 'node:net';
import { pino, type Logger } from 'pino';

export interface RawResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  /** Bytes of the whole response on the wire (head, framing and body). */
  wireLength: number;
}

/** Builds request bytes: request line, `Host`, the given headers (repeatable), `Content-Length` for a body, `Connection: close`. */
export function httpRequest(
  method: string,
  target: string,
  host: string,
  { headers = [], body, contentLength }: { headers?: Array<[string, string]>; body?: string | Buffer; contentLength?: number } = {},
): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${host}`];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  const bytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  if (contentLength !== undefined) lines.push(`Content-Length: ${contentLength}`);
  else if (bytes !== undefined) lines.push(`Content-Length: ${bytes.length}`);
  lines.push('Connection: close');
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), bytes ?? Buffer.alloc(0)]);
}

function parseHead(head: Buffer): { status: number; headers: Record<string, string> } {
  const [statusLine = '', ...headerLines] = head.toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status, headers };
}

/** The first complete response in `buf`, or null while it is incomplete. */
export function parseResponse(buf: Buffer): RawResponse | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const { status, headers } = parseHead(buf.subarray(0, end));
  let body = buf.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (body.length < length) return null;
    body = body.subarray(0, length);
    return finish(status, headers, body, end + 4 + length);
  } else if (headers['transfer-encoding'] === 'chunked') {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = body.indexOf('\r\n', at);
      if (lineEnd === -1) return null;
      const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
      if (size === 0) {
        if (body.length < lineEnd + 4) return null;
        return finish(status, headers, Buffer.concat(chunks), end + 4 + lineEnd + 4);
      }
      if (body.length < lineEnd + 2 + size + 2) return null;
      chunks.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  return null; // no length: the body runs to the end of the connection
}

function finish(status: number, headers: Record<string, string>, body: Buffer, wireLength: number): RawResponse {
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, headers, body, text, json, wireLength };
}

/**
 * Sends `data` (the parts in order) on a new connection, without closing its
 * side, and resolves with the first complete response (or the `answer`th, for
 * pipelined requests); the socket is then destroyed.
 * Rejects if the connection ends without a response or after `timeoutMs`.
 */
export function sendRaw(port: number, data: Buffer | Buffer[], { timeoutMs = 5000, answer = 1 } = {}): Promise<RawResponse> {
  // The answers before the wanted one are skipped by their length on the wire.
  const parseAnswer = (buf: Buffer): RawResponse | null => {
    let at = 0;
    for (let n = 1; ; n++) {
      const res = parseResponse(buf.subarray(at));
      if (res === null || n === answer) return res;
      at += res.wireLength;
    }
  };
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let settled = false;
    const done = (err: Error | null, res?: RawResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(() => done(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => {
      // No end(): Node's server aborts a request whose client half-closes (httpAllowHalfOpen is off).
      for (const part of Array.isArray(data) ? data : [data]) socket.write(part);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const res = parseAnswer(received);
      if (res) done(null, res);
    });
    // The server may reset a socket whose request it refused before reading it all; the answer may be in already.
    socket.on('error', (err) => {
      const res = parseAnswer(received);
      done(res ? null : err, res ?? undefined);
    });
    socket.on('end', () => {
      const res = parseAnswer(received);
      if (res) return done(null, res);
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd !== -1) {
        // No length: the body ran to the end of the connection.
        const head = parseHead(received.subarray(0, headEnd));
        return done(null, finish(head.status, head.headers, received.subarray(headEnd + 4), received.length));
      }
      done(new Error(`connection ended without a response (${received.length} bytes)`));
    });
  });
}

export interface RawConnection {
  /** Writes `data` and resolves with the next complete response on this connection. */
  send(data: Buffer | string): Promise<RawResponse>;
  /** Writes without waiting for anything (a trickling client). */
  write(data: Buffer | string): boolean;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves when the server closes the connection, with ms since it was opened. */
  readonly closed: Promise<number>;
  destroy(): void;
}

/** A connection that stays open for several requests (keep-alive) or a slow client. */
export function openRaw(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const opened = performance.now();
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let consumed = 0;
    let waiter: ((res: RawResponse) => void) | null = null;
    let isClosed = false;
    const closed = new Promise<number>((resolveClosed) => socket.once('close', () => {
      isClosed = true;
      resolveClosed(performance.now() - opened);
    }));
    const check = () => {
      if (waiter === null) return;
      const res = parseResponse(received.subarray(consumed));
      if (res === null) return;
      consumed += res.wireLength;
      const w = waiter;
      waiter = null;
      w(res);
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      check();
    });
    socket.on('error', () => {});
    socket.once('connect', () =>
      resolve({
        send(data) {
          return new Promise((resolveResponse, rejectResponse) => {
            if (isClosed) return rejectResponse(new Error('connection closed'));
            waiter = resolveResponse;
            void closed.then(() => {
              if (waiter === resolveResponse) rejectResponse(new Error(`connection closed before a response (${received.length} bytes)`));
            });
            socket.write(data);
            check();
          });
        },
        write: (data) => !isClosed && socket.write(data),
        received: () => received,
        closed,
        destroy: () => socket.destroy(),
      }),
    );
    socket.once('error', reject);
  });
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger (level `debug` by default) whose lines are kept, parsed, and also as raw text. */
export function memoryLogger(level = 'debug'): { logger: Logger; lines: LogLine[]; raw: string[] } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const logger = pino(
    { level },
    {
      write(line: string) {
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  return { logger, lines, raw };
}
