/**
 * JSON request bodies: content type checked (415), size limited (413), parse
 * errors mapped by the error handler (400 `APP_ERR_BAD_JSON`).
 */
import { isUtf8 } from 'node:buffer';
import express, { type Request, type RequestHandler } from 'express';
import { AppError } from '../errors.js';

const JSON_TYPES = ['application/json', 'application/*+json'];

/** Does the request carry content? (RFC 9112 §6.3: a body is framed by Transfer-Encoding or a non-zero Content-Length.) */
function hasContent(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Middleware pair for routes that take a body. A request with content of
 * another media type is refused; an empty one parses as `{}` and is then
 * judged by the route's field rules.
 */
export function jsonBody(limitBytes: number): RequestHandler[] {
  const requireJsonType: RequestHandler = (req, res, next) => {
    if (hasContent(req) && !req.is(JSON_TYPES)) {
      throw new AppError('APP_ERR_UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON (Content-Type: application/json)');
    }
    if (Number(req.headers['content-length'] ?? 0) > limitBytes) {
      // Refused before reading: body-parser would first read (and discard) the whole announced body,
      // which a client can trickle for as long as requestTimeoutMs allows. Closing the connection drops the rest.
      res.set('Connection', 'close');
      throw new AppError('APP_ERR_BODY_TOO_LARGE', `the body is larger than ${limitBytes} bytes`);
    }
    next();
  };
  // strict: false so that `"text"` or `5` parse and get APP_ERR_INVALID_BODY ("wrong type")
  // rather than APP_ERR_BAD_JSON: they are valid JSON.
  // verify: the decoder would turn invalid UTF-8 into U+FFFD silently and store that; refuse it instead.
  const verify = (_req: unknown, _res: unknown, buf: Buffer): void => {
    if (!isUtf8(buf)) throw new AppError('APP_ERR_BAD_JSON', 'the body is not valid UTF-8');
  };
  return [requireJsonType, express.json({ limit: limitBytes, strict: false, type: JSON_TYPES, verify })];
}
