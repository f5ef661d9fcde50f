/**
 * The chat API calls of the lab's setup (docs/chat-api.md), shared by the chat
 * subscribers and the publisher: sign in, create a room, join it. Each is
 * retried while the failure may pass (network errors, 408, 429, 5xx; 404 on a
 * join, since the publisher may still be creating the room) until a deadline.
 */
import { type HttpAnswer, type HttpClient, type RequestInit, RequestAbortedError } from '../http-client.js';
import { backoffMs, sleep } from './subscriber.js';

/** Bound on attempts next to the deadline (at 2 s back-off, over half an hour). */
const MAX_ATTEMPTS = 1_000;

export interface CallContext {
  http: HttpClient;
  /** performance.now() ms. */
  deadline: number;
  signal: AbortSignal;
  /** Longest wait for one answer, ms (further capped by the deadline). */
  requestTimeoutMs: number;
  /** Called for each failed attempt (status, or undefined for a network error), to count it. */
  onError?: (status: number | undefined) => void;
}

function transient(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Calls until `ok(status)`; retries transient failures (and `alsoRetry`) until the deadline; throws on anything else. */
export async function callUntil(
  ctx: CallContext,
  what: string,
  path: string,
  init: RequestInit,
  ok: (status: number) => boolean,
  alsoRetry: (status: number) => boolean = () => false,
): Promise<HttpAnswer> {
  let last = 'no attempt';
  for (let attempt = 0; attempt < MAX_ATTEMPTS && !ctx.signal.aborted; attempt++) {
    const left = ctx.deadline - performance.now();
    if (left <= 0) break;
    let answer: HttpAnswer | null = null;
    try {
      answer = await ctx.http.request(path, { ...init, timeoutMs: Math.max(1, Math.min(ctx.requestTimeoutMs, left)) });
    } catch (err) {
      if (err instanceof RequestAbortedError || ctx.signal.aborted) throw new RequestAbortedError(`${what}: stopped`);
      ctx.onError?.(undefined);
      last = (err as Error).message;
    }
    if (answer !== null) {
      if (ok(answer.status)) return answer;
      ctx.onError?.(answer.status);
      last = `${answer.status} ${answer.body.slice(0, 200)}`;
      if (!transient(answer.status) && !alsoRetry(answer.status)) throw new Error(`${what}: ${last}`);
    }
    await sleep(Math.min(backoffMs(attempt), ctx.deadline - performance.now()), ctx.signal);
  }
  throw new Error(`${what}: no success before the deadline (last: ${last})`);
}

function parse(answer: HttpAnswer, what: string): any {
  try {
    return JSON.parse(answer.body);
  } catch {
    throw new Error(`${what}: the answer is not JSON: ${answer.body.slice(0, 200)}`);
  }
}

/** How many nicks `signIn` tries: a retried sign-in whose first answer was lost finds its nick taken. */
const NICK_TRIES = 5;

/**
 * `POST /api/session {"nick"}`: the client's HttpClient keeps the `sid` cookie. Nicks are unique among live
 * sessions (409 APP_ERR_NICK_TAKEN): when an attempt's answer is lost after the app committed it, the retry finds
 * the nick taken by that orphan session and signs in as `<nick>-2`, `<nick>-3`, ... instead.
 */
export async function signIn(ctx: CallContext, nick: string): Promise<void> {
  for (let n = 1; n <= NICK_TRIES; n++) {
    const tried = n === 1 ? nick : `${nick}-${n}`;
    const what = `sign in as ${tried}`;
    const answer = await callUntil(ctx, what, '/api/session', { method: 'POST', json: { nick: tried } }, (s) => s === 200 || s === 201 || s === 409);
    if (answer.status === 409) continue;
    if (ctx.http.cookie('sid') === undefined) throw new Error(`${what}: no sid cookie in the answer`);
    return;
  }
  throw new Error(`sign in as ${nick}: the nick and ${NICK_TRIES - 1} variants are taken`);
}

/** `POST /api/rooms {"name"}`; an existing room (409) is fine. */
export async function createRoom(ctx: CallContext, room: string): Promise<void> {
  await callUntil(ctx, `create room ${room}`, '/api/rooms', { method: 'POST', json: { name: room } }, (s) => s === 201 || s === 200 || s === 409);
}

/** `POST /api/rooms/<room>/join`: the room's cursor (its last event id, the join event included). */
export async function joinRoom(ctx: CallContext, room: string): Promise<number> {
  const what = `join room ${room}`;
  const answer = await callUntil(ctx, what, `/api/rooms/${encodeURIComponent(room)}/join`, { method: 'POST' }, (s) => s === 200, (s) => s === 404);
  const cursor = parse(answer, what)?.cursor;
  if (!Number.isInteger(cursor) || cursor < 0) throw new Error(`${what}: no cursor in the answer: ${answer.body.slice(0, 200)}`);
  return cursor as number;
}
