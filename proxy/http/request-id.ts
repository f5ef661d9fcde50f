/**
 * Gives each client request its id (protocol/request-id.ts) as it enters the
 * proxy: the client's `X-Request-Id` when it is safe, else a new UUID. The id is
 * written back into the request's headers, so the forwarder and every re-ask
 * (which copy the client's headers) carry it to the app, and set on the
 * response, so every answer the proxy writes (pass-through, held, delivered,
 * error) returns it to the client. Node merges headers set here with those given
 * to `writeHead` later; an app that echoes the same header sends the same value.
 */
import type { ClientRequest, ClientResponse } from './client-message.js';
import { isSafeRequestId, REQUEST_ID_HEADER } from '../../protocol/request-id.js';
import { randomRequestId } from './random-request-id.js';

export { REQUEST_ID_HEADER };

/**
 * The id on the response itself, not in a WeakMap: every client request sets one, and 10,000 parked requests
 * made a large ephemeron table the garbage collector walks on every pass (issue 15, the window heap profile).
 */
const RESPONSE_ID = Symbol('requestId');
type WithId = ClientResponse & { [RESPONSE_ID]?: string };

/** Assigns (or accepts) the request's id, in place; returns it. */
export function assignRequestId(req: ClientRequest, res: ClientResponse): string {
  const id = chooseRequestId(req);
  req.headers[REQUEST_ID_HEADER] = id;
  setResponseRequestId(res, id);
  return id;
}

/**
 * The id `assignRequestId` would give `req` (the client's when safe, else a new random UUID), without writing it
 * anywhere: for the client front, which builds the request's headers with it in one go (http/front/final-headers.ts).
 */
export function chooseRequestId(req: ClientRequest): string {
  const sent = req.headers[REQUEST_ID_HEADER];
  return isSafeRequestId(sent) ? sent : randomRequestId();
}

/** Records on `res` the id its answers carry (what `assignRequestId` does to the response). */
export function setResponseRequestId(res: ClientResponse, id: string): void {
  (res as WithId)[RESPONSE_ID] = id;
}

/** The id every answer on `res` must carry in `X-Request-Id`; undefined for responses of unassigned requests (control port). */
export function responseRequestId(res: ClientResponse): string | undefined {
  return (res as WithId)[RESPONSE_ID];
}

/** The id `assignRequestId` gave this request (undefined for requests it never saw). */
export function requestIdOf(req: ClientRequest): string | undefined {
  const value = req.headers[REQUEST_ID_HEADER];
  return typeof value === 'string' ? value : undefined;
}
