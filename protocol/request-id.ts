/**
 * The request id that follows one client request through the proxy and the app
 * (docs/operations.md, "Request ids"). The proxy assigns it, forwards it to the
 * app in `X-Request-Id` (first send and every re-ask) and returns it to the
 * client in the same header; both sides put it in their log lines as
 * `requestId`. A client may choose its own id, but only a short, log-safe one:
 * anything else (too long, spaces, quotes, control characters) is replaced, so
 * a client can never inject text into a log line or a header through it.
 */
import { randomUUID } from 'node:crypto';

/** Request and response header (lower-case, as Node presents incoming names). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What a client-supplied id must look like to be kept: 1–64 of `A-Z a-z 0-9 . _ -`. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Is `value` a request id we accept from a peer as it is? A repeated header (array) is not. */
export function isSafeRequestId(value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID_PATTERN.test(value);
}

/** The peer's id if it is safe, else a fresh `crypto.randomUUID()`. */
export function requestIdFrom(value: unknown): string {
  return isSafeRequestId(value) ? value : randomUUID();
}
