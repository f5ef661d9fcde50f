/**
 * The app's error catalogue. Every error a client can see is an `AppError`
 * carrying a stable code and an HTTP status; it crosses the wire as
 * `{code, message}` (protocol/wire-error.ts). Messages are for humans and may change.
 */

/** Code -> HTTP status of every wire error the app can answer. */
export const APP_ERROR_STATUS = {
  APP_ERR_INVALID_NICK: 400,
  /** Another live session has this nick (the same after trimming, NFKC and case folding: server/store/nick-key.ts). */
  APP_ERR_NICK_TAKEN: 409,
  APP_ERR_NO_SESSION: 401,
  /** The cookie names a session past its idle timeout or its maximum age (server/session-expiry.ts); sign in again. */
  APP_ERR_SESSION_EXPIRED: 401,
  /** The cookie names a session that signed out (`DELETE /api/session`); sign in again. */
  APP_ERR_SESSION_ENDED: 401,
  APP_ERR_INVALID_ROOM_NAME: 400,
  APP_ERR_ROOM_EXISTS: 409,
  APP_ERR_ROOM_NOT_FOUND: 404,
  APP_ERR_NOT_MEMBER: 403,
  /** A join that would give a CometD client subscribed to `/chat/*` more rooms than it may follow (docs/bayeux.md). */
  APP_ERR_TOO_MANY_SUBSCRIPTIONS: 403,
  APP_ERR_EMPTY_MESSAGE: 400,
  APP_ERR_MESSAGE_TOO_LONG: 413,
  APP_ERR_BAD_CURSOR: 400,
  /** `GET /api/stream` with a `format` other than sse, xhr or iframe, or given twice. */
  APP_ERR_BAD_STREAM_FORMAT: 400,
  /** An `Idempotency-Key` header that is not 1–64 characters of A-Z a-z 0-9 `_ - . ~ :`. */
  APP_ERR_BAD_IDEMPOTENCY_KEY: 400,
  /** An `Idempotency-Key` this session already used for a different room or text. */
  APP_ERR_IDEMPOTENCY_KEY_REUSED: 422,
  APP_ERR_BAD_CONNECTION_ID: 400,
  APP_ERR_FOREIGN_CONNECTION_ID: 403,
  APP_ERR_BAD_JSON: 400,
  /** A Bayeux callback-polling GET without one `jsonp=` name made of dotted ASCII identifiers (docs/bayeux.md). */
  APP_ERR_BAD_JSONP_CALLBACK: 400,
  APP_ERR_INVALID_BODY: 400,
  APP_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  APP_ERR_BODY_TOO_LARGE: 413,
  APP_ERR_NOT_FOUND: 404,
  APP_ERR_BAD_GRIP_SIG: 401,
  APP_ERR_INTERNAL: 500,
  /** Message text with control characters (other than tab and newline) or unpaired surrogates. */
  APP_ERR_INVALID_MESSAGE: 400,
  /** A state-changing request whose Origin (or Referer) is another site (server/http/csrf.ts). */
  APP_ERR_CSRF: 403,
  /** `requireGripSig` is on and the request did not come through the proxy. */
  APP_ERR_NO_GRIP_SIG: 401,
  /** `postsPerMinute` or `sessionsPerMinutePerAddress` exceeded; sent with `Retry-After`. */
  APP_ERR_RATE_LIMITED: 429,
  /** The session already has `maxConnectionsPerSession` live connection IDs; sent with `Retry-After`. */
  APP_ERR_TOO_MANY_CONNECTIONS: 503,
  /** Not HTTP/1.1 Node can parse (common/http-limits.ts); normally stopped by the proxy first. */
  APP_ERR_BAD_REQUEST: 400,
  /** The request head is larger than `maxHeaderBytes`. */
  APP_ERR_HEADERS_TOO_LARGE: 431,
  /** The request head (or body) did not arrive in time. */
  APP_ERR_REQUEST_TIMEOUT: 408,
  /** SQLite stayed locked by another connection for `sqliteBusyTimeoutMs`; sent with `Retry-After`. */
  APP_ERR_DB_BUSY: 503,
} as const;

export type AppErrorCode = keyof typeof APP_ERROR_STATUS;

/**
 * Codes that never reach a client: `APP_ERR_BAD_OPTION` (server/options.ts,
 * thrown at startup) and `APP_ERR_PUBLISH_FAILED` (server/outbox/publisher.ts,
 * seen by the relay only).
 */
export type AppInternalErrorCode = 'APP_ERR_BAD_OPTION' | 'APP_ERR_PUBLISH_FAILED';

/** An error meant for the client: its code, status and message are sent as they are. */
export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  /** Sent as `Retry-After` (seconds) when set: the refusal is temporary. */
  retryAfterS: number | undefined;

  constructor(readonly code: AppErrorCode, message: string, retryAfterS?: number) {
    super(message);
    this.status = APP_ERROR_STATUS[code];
    this.retryAfterS = retryAfterS;
  }

  /** The wire body. */
  toJSON(): { code: AppErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function noSession(): AppError {
  return new AppError('APP_ERR_NO_SESSION', 'a session is required: POST /api/session first');
}

export function nickTaken(nick: string): AppError {
  return new AppError('APP_ERR_NICK_TAKEN', `the nickname ${JSON.stringify(nick)} is already in use; please choose another`);
}

export function roomNotFound(name: string): AppError {
  return new AppError('APP_ERR_ROOM_NOT_FOUND', `room ${JSON.stringify(name)} does not exist`);
}

export function notMember(name: string): AppError {
  return new AppError('APP_ERR_NOT_MEMBER', `you are not a member of room ${JSON.stringify(name)}`);
}

/** 401 for a cookie whose session ended: `APP_ERR_SESSION_ENDED` after a sign-out, `_EXPIRED` after expiry. */
export function sessionEnded(reason: 'signed-out' | 'expired'): AppError {
  return reason === 'signed-out'
    ? new AppError('APP_ERR_SESSION_ENDED', 'this session was signed out: POST /api/session to sign in again')
    : sessionExpired();
}

/** `why` when known at the moment of the request; a session the pruner ended only says it expired. */
export function sessionExpired(why?: 'idle' | 'max-age'): AppError {
  const what = why === 'idle' ? 'was unused for longer than the idle timeout' : why === 'max-age' ? 'reached its maximum age' : 'has expired';
  return new AppError('APP_ERR_SESSION_EXPIRED', `this session ${what}: POST /api/session to sign in again`);
}
