/**
 * The last two middlewares: unknown routes, and turning every error into the
 * `{code, message}` wire body (protocol/wire-error.ts) with its status.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { wireError } from '../../protocol/wire-error.js';
import { AppError, type AppErrorCode } from '../errors.js';
import { isBusyError } from '../store/busy-retry.js';

/** body-parser / raw-body error `type` -> our code. */
const BODY_ERROR_CODES: Record<string, AppErrorCode> = {
  'entity.parse.failed': 'APP_ERR_BAD_JSON',
  'entity.too.large': 'APP_ERR_BODY_TOO_LARGE',
  'charset.unsupported': 'APP_ERR_UNSUPPORTED_MEDIA_TYPE',
  'encoding.unsupported': 'APP_ERR_UNSUPPORTED_MEDIA_TYPE',
};

interface HttpLibraryError {
  status?: unknown;
  type?: unknown;
  expose?: unknown;
  message?: unknown;
}

/**
 * Errors thrown by body-parser (http-errors, `expose: true`) and by the router
 * (a URIError given `status: 400` for an undecodable path parameter) for a bad
 * request carry a 4xx `status`.
 */
function fromLibrary(err: unknown): AppError | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as HttpLibraryError;
  if (typeof e.status !== 'number' || e.status < 400 || e.status > 499 || e.expose === false) return null;
  const message = typeof e.message === 'string' ? e.message : 'bad request';
  const code = typeof e.type === 'string' ? BODY_ERROR_CODES[e.type] : undefined;
  if (code) return new AppError(code, message);
  // A path that cannot be decoded names no resource; any other client error is about the body.
  return new AppError(err instanceof URIError ? 'APP_ERR_NOT_FOUND' : 'APP_ERR_INVALID_BODY', message);
}

/** Seconds a client is told to wait after `APP_ERR_DB_BUSY`. */
export const DB_BUSY_RETRY_AFTER_S = 1;

/**
 * SQLite's SQLITE_BUSY / SQLITE_LOCKED that outlasted the app's patience
 * (`sqliteBusyTimeoutMs`, waited on timers by store/busy-retry.ts): another
 * connection held the write lock. The transaction was rolled back whole, so the
 * request changed nothing and can simply be sent again: a 503 with
 * `Retry-After` says so, where a 500 would say the app is broken.
 */
function fromDatabase(err: unknown): AppError | null {
  if (!isBusyError(err)) return null;
  return new AppError('APP_ERR_DB_BUSY', 'the database is busy; nothing was changed, retry shortly', DB_BUSY_RETRY_AFTER_S);
}

export const notFound: RequestHandler = (req) => {
  throw new AppError('APP_ERR_NOT_FOUND', `no route for ${req.method} ${req.path}`);
};

/** Known errors go out as they are; anything else is a 500 that leaks nothing and is logged once with its stack. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      // Too late for a JSON body: let Express close the connection.
      next(err);
      return;
    }
    const known = err instanceof AppError ? err : (fromLibrary(err) ?? fromDatabase(err));
    if (known?.code === 'APP_ERR_DB_BUSY') {
      (req.log ?? logger).warn({ sqliteCode: (err as { code: string }).code, url: req.originalUrl }, 'database busy; answered 503');
    }
    if (known) {
      res.locals.errorCode = known.code; // for the request's debug line (server/http/request-log.ts)
      if (known.retryAfterS !== undefined) res.set('Retry-After', String(known.retryAfterS));
      // Every refused request once, at info (DB busy was just logged at warn); never its headers or body.
      if (known.code !== 'APP_ERR_DB_BUSY') {
        (req.log ?? logger).info({ code: known.code, status: known.status, method: req.method, url: req.originalUrl.slice(0, 256) }, 'request refused');
      }
      res.status(known.status).json(wireError(known.code, known.message));
      return;
    }
    res.locals.errorCode = 'APP_ERR_INTERNAL';
    (req.log ?? logger).error({ err, method: req.method, url: req.originalUrl }, 'unhandled error');
    res.status(500).json(wireError('APP_ERR_INTERNAL', 'internal error'));
  };
}
