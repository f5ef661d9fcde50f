/**
 * The proxy's error catalogue. Every error that crosses the wire is a stable
 * code plus the HTTP status that fits it, sent as `{code, message}` JSON
 * (protocol/wire-error.ts). Callers and tests branch on codes, never on
 * message strings.
 */
import type { ClientResponse } from './http/client-message.js';
import { wireError } from '../protocol/wire-error.js';
import type { HeaderMap } from './http/header-filter.js';
import { writeResponse, writtenResponse, type HeldResponse } from './http/response.js';

/** Code -> HTTP status. `PROXY_ERR_BAD_OPTION` never reaches a client (start-up only), hence 500. */
export const PROXY_ERROR_STATUS = {
  PROXY_ERR_UPSTREAM_UNAVAILABLE: 502,
  PROXY_ERR_UPSTREAM_TIMEOUT: 504,
  PROXY_ERR_BAD_INSTRUCTION: 502,
  /** An `application/grip-instruct` body that is not a valid instruction (bad JSON, wrong types, not a 200). */
  PROXY_ERR_BAD_GRIP_INSTRUCT: 502,
  /** The app asked for a GRIP feature this proxy refuses (docs/protocol.md §12): e.g. a `Grip-Link` with no hold. */
  PROXY_ERR_UNSUPPORTED_INSTRUCTION: 502,
  /** An `Upgrade: websocket` request: WebSocket-over-HTTP is not served (docs/protocol.md §12). */
  PROXY_ERR_UPGRADE_UNSUPPORTED: 501,
  /** A JSON-P request whose callback name is not a plain JavaScript identifier path (docs/protocol.md §1.9). */
  PROXY_ERR_BAD_CALLBACK: 400,
  PROXY_ERR_CONNECTION_CLOSED: 410,
  PROXY_ERR_UNAUTHORIZED: 401,
  PROXY_ERR_BAD_JSON: 400,
  PROXY_ERR_INVALID_ITEM: 400,
  /** An item's status is interim (1xx), not HTTP (600+), or 204/304 with a body: it would desync the client. */
  PROXY_ERR_INVALID_STATUS: 400,
  /** A `/push/` or `/close/` call names more distinct connection IDs than `controlMaxIdsPerCall`. */
  PROXY_ERR_TOO_MANY_IDS: 400,
  /** `maxUnknownQueues` reached: a push would open a queue for an ID not parked here lately; nothing was done. */
  PROXY_ERR_TOO_MANY_QUEUES: 503,
  PROXY_ERR_BODY_TOO_LARGE: 413,
  PROXY_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  PROXY_ERR_NOT_FOUND: 404,
  PROXY_ERR_METHOD_NOT_ALLOWED: 405,
  PROXY_ERR_SHUTTING_DOWN: 503,
  /** The Redis bus (docs/scaleout.md) did not take a control call; the caller retries. */
  PROXY_ERR_BUS_UNAVAILABLE: 503,
  /** The Host (or an absolute-form target) names a host this port does not serve (RFC 9110 §15.5.20). */
  PROXY_ERR_MISDIRECTED: 421,
  /** Two Host headers, an empty one, or one that is not RFC 3986 host[:port] (RFC 9112 §3.2). */
  PROXY_ERR_BAD_HOST: 400,
  /** `maxParked`, `maxParkedPerAddress` or `maxParkedBytes` reached: the hold is not parked; retry after `Retry-After` seconds. */
  PROXY_ERR_TOO_MANY_PARKED: 503,
  /** The app held a request whose body is over `maxParkedBodyBytes`, or still arriving: it is never parked (a retry gets the same). */
  PROXY_ERR_PARKED_BODY_TOO_LARGE: 413,
  /** Not HTTP/1.1 Node can parse (bad request line or header, NUL byte, conflicting framing): common/http-limits.ts. */
  PROXY_ERR_BAD_REQUEST: 400,
  /** The request head is larger than `maxHeaderBytes`. */
  PROXY_ERR_HEADERS_TOO_LARGE: 431,
  /** The request head (or body) did not arrive within `headersTimeoutMs` (`requestTimeoutMs`): a slow client. */
  PROXY_ERR_REQUEST_TIMEOUT: 408,
  /** More than `pipelineMaxQueued` requests pipelined behind the one being answered on a connection, which is then closed. */
  PROXY_ERR_TOO_MANY_PIPELINED: 429,
  PROXY_ERR_BAD_OPTION: 500,
} as const;

export type ProxyErrorCode = keyof typeof PROXY_ERROR_STATUS;

/** An error with a catalogue code; `status` is the HTTP status it is answered with. */
export class ProxyError extends Error {
  override name = 'ProxyError';
  readonly status: number;

  constructor(
    readonly code: ProxyErrorCode,
    message: string,
  ) {
    super(message);
    this.status = PROXY_ERROR_STATUS[code];
  }
}

/** The code of each response built by `errorResponse`, for metrics and logs (`errorCodeOf`). */
const codes = new WeakMap<HeldResponse, ProxyErrorCode>();

/** The `{code, message}` JSON response for `code`, as status, headers and body. */
export function errorResponse(code: ProxyErrorCode, message: string): HeldResponse {
  const response: HeldResponse = {
    code: PROXY_ERROR_STATUS[code],
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
    body: Buffer.from(JSON.stringify(wireError(code, message))),
  };
  codes.set(response, code);
  return response;
}

/** The error code `res` was answered with, if the proxy wrote an `errorResponse` to it. */
export function errorCodeOf(res: ClientResponse): ProxyErrorCode | undefined {
  const response = writtenResponse(res);
  return response === undefined ? undefined : codes.get(response);
}

/**
 * Writes `{code, message}` JSON with the code's status. Does nothing if the
 * response already started or the client is gone; never throws, so it is safe
 * in any error path.
 */
export function sendError(
  res: ClientResponse,
  code: ProxyErrorCode,
  message: string,
  extraHeaders: HeaderMap = {},
): boolean {
  return writeResponse(res, errorResponse(code, message), extraHeaders);
}
