/**
 * The first middleware: gives each request its id and a pino child logger
 * carrying it (`req.log`, field `requestId`), so every line the app logs about a
 * request can be matched with the proxy's lines about the same client request
 * (docs/operations.md, "Request ids"). The id is the proxy's `X-Request-Id` when
 * it is safe (protocol/request-id.ts), else a new UUID (a request that did not
 * come through the proxy); it is echoed in the response's `X-Request-Id`.
 *
 * No access log at info: one line per request at debug (method, path, status,
 * duration, error code), errors at error level by the error handler.
 */
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { REQUEST_ID_HEADER, requestIdFrom } from '../../protocol/request-id.js';

declare global {
  namespace Express {
    interface Request {
      /** This request's id (server/http/request-log.ts). */
      requestId?: string;
      /** The app's logger with `requestId` bound. */
      log?: Logger;
    }
  }
}

export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
    const log = logger.child({ requestId });
    req.requestId = requestId;
    req.log = log;
    res.setHeader(REQUEST_ID_HEADER, requestId);
    if (log.isLevelEnabled('debug')) {
      const started = performance.now();
      res.once('finish', () => {
        log.debug(
          {
            method: req.method,
            url: req.originalUrl,
            status: res.statusCode,
            code: res.locals.errorCode as string | undefined,
            hold: res.getHeader('grip-hold') !== undefined,
            ms: Math.round((performance.now() - started) * 10) / 10,
          },
          'request',
        );
      });
    }
    next();
  };
}
