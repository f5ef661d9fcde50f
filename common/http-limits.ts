/**
 * Limits on what a client may send before its request is even dispatched, for
 * the proxy's client and control servers and the app's server: the size of the
 * request head (`maxHeaderSize`, answered 431) and how long the head and the
 * whole request may take to arrive (`headersTimeout`/`requestTimeout`, answered
 * 408), which is what stops a slow-loris client from holding a socket forever by
 * trickling header bytes. Node answers these with a bare status line; the
 * `clientError` handler here answers them as `{code, message}` JSON like every
 * other refusal, and logs each once at info.
 *
 * `requestTimeout` ends when the request has been *received* (Node removes the
 * connection from its check list at the end of the message), so it never cuts a
 * long-poll that is parked after its request arrived; `keepAliveTimeout` only
 * runs between requests on an idle connection, never while a response is pending.
 */
import type { Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { wireError } from '../protocol/wire-error.js';

export interface HttpServerLimits {
  /** Largest request head (request line + headers), bytes; larger ones get 431. */
  maxHeaderBytes: number;
  /** Time allowed for the whole request head to arrive, ms; then 408 and the socket is closed. */
  headersTimeoutMs: number;
  /** Time allowed for the whole request (head and body) to arrive, ms; 0 turns it off. Not the response time. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept between requests, ms. */
  keepAliveTimeoutMs: number;
}

/** How often Node checks the two timeouts: a quarter of the shorter, within [10 ms, 1 s] (Node's default is 30 s). */
function checkIntervalMs(limits: HttpServerLimits): number {
  const shortest = limits.requestTimeoutMs > 0 ? Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) : limits.headersTimeoutMs;
  return Math.max(10, Math.min(1000, Math.floor(shortest / 4)));
}

/** Options for `http.createServer(options, handler)`. */
export function httpServerOptions(limits: HttpServerLimits): ServerOptions {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: checkIntervalMs(limits),
  };
}

/** Problems found before a request is dispatched, each answered with its own code. */
export interface ClientErrorCodes {
  /** 400: the bytes are not HTTP (bad request line, bad header, NUL byte, smuggling framing, ...). */
  badRequest: string;
  /** 431: the request head is larger than `maxHeaderBytes`. */
  headersTooLarge: string;
  /** 408: the head (or the whole request) did not arrive in time. */
  timeout: string;
}

/** Errors that mean the client went away: nothing to answer, nothing worth more than a debug line. */
const GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'HPE_INVALID_EOF_STATE']);

function rawResponse(status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify(wireError(code, message));
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    'Cache-Control: no-store\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

/**
 * Answers Node's `clientError`s on `server` as `{code, message}` JSON and closes
 * the connection, as Node's own handler does with a bare status line (nothing is
 * written when a response to this socket has already started).
 */
export function answerClientErrors(
  server: Server,
  codes: ClientErrorCodes,
  logger: Logger,
  /** Told each code answered, e.g. for an error counter. */
  onRefused?: (code: string) => void,
): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const errCode = err.code ?? '';
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (GONE.has(errCode) || !socket.writable || inFlight?.headersSent === true) {
      logger.debug({ errCode, remoteAddress: socket.remoteAddress }, 'client connection failed');
      socket.destroy();
      return;
    }
    let response: string;
    let code: string;
    if (errCode === 'HPE_HEADER_OVERFLOW') {
      code = codes.headersTooLarge;
      response = rawResponse(431, 'Request Header Fields Too Large', code, 'the request head is too large');
    } else if (errCode === 'ERR_HTTP_REQUEST_TIMEOUT') {
      code = codes.timeout;
      response = rawResponse(408, 'Request Timeout', code, 'the request did not arrive in time');
    } else {
      code = codes.badRequest;
      const parserReason = (err as { reason?: unknown }).reason;
      const reason = typeof parserReason === 'string' ? `: ${parserReason}` : '';
      response = rawResponse(400, 'Bad Request', code, `the request is not valid HTTP/1.1${reason}`);
    }
    logger.info({ code, errCode, remoteAddress: socket.remoteAddress }, 'malformed request refused');
    onRefused?.(code);
    // end() flushes the answer; destroy once it is out so a client that never reads cannot keep the socket.
    socket.once('finish', () => socket.destroy());
    setTimeout(() => socket.destroy(), 1000).unref();
    socket.end(response);
  });
}
