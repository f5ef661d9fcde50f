/**
 * JSON request bodies: content type checked (415), size limited (413), parse
 * errors mapped by the error handler (400 `APP_ERR_BAD_JSON`).
 */
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
  const requireJsonType: RequestHandler = (req, _res, next) => {
    if (hasContent(req) && !req.is(JSON_TYPES)) {
      throw new AppError('APP_ERR_UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON (Content-Type: application/json)');
    }
    next();
  };
  // strict: false so that `"text"` or `5` parse and get APP_ERR_INVALID_BODY ("wrong type")
  // rather than APP_ERR_BAD_JSON: they are valid JSON.
  return [requireJsonType, express.json({ limit: limitBytes, strict: false, type: JSON_TYPES })];
}
