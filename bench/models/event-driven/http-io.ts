/**
 * Request bodies and JSON answers on bare `node:http`: the little of Express
 * the event-driven server needs, with the chat API's limits and codes.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LabError } from './errors.js';

/** Largest request body, bytes (docs/chat-api.md: 16 KiB). */
export const BODY_MAX_BYTES = 16 * 1024;

const JSON_HEADERS = [
  'Content-Type', 'application/json; charset=utf-8',
  'X-Content-Type-Options', 'nosniff',
  // Poll answers must never be served from a cache; nothing else here is cacheable either.
  'Cache-Control', 'no-store',
] as const;

/** Sends `body` (JSON text) with `status`; `extra` is a flat `[name, value, ...]` header list. */
export function sendJson(res: ServerResponse, status: number, body: string, extra?: readonly string[]): void {
  if (res.headersSent || res.destroyed) return;
  const buf = Buffer.from(body);
  const headers: string[] = [...JSON_HEADERS, 'Content-Length', String(buf.length)];
  if (extra) headers.push(...extra);
  res.writeHead(status, headers);
  res.end(buf);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, extra?: readonly string[]): void {
  sendJson(res, status, JSON.stringify({ code, message }), extra);
}

/** Does the request carry content? (RFC 9112 §6.3: framed by Transfer-Encoding or a non-zero Content-Length.) */
function hasContent(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** `application/json` or `application/*+json`, parameters ignored. */
function isJsonType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/**
 * Reads a JSON body: no content is `{}` (then judged by the route's field
 * rules); other media types are 415; over `BODY_MAX_BYTES` is 413 (announced:
 * refused before reading; chunked: as soon as the limit is passed) and the
 * connection is closed so the rest is never read; invalid UTF-8 or JSON is 400.
 */
export function readJsonBody(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  if (!hasContent(req)) return Promise.resolve({});
  if (!isJsonType(req.headers['content-type'])) {
    return Promise.reject(new LabError('APP_ERR_UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON (Content-Type: application/json)'));
  }
  const tooLarge = (): LabError => {
    res.shouldKeepAlive = false;
    return new LabError('APP_ERR_BODY_TOO_LARGE', `the body is larger than ${BODY_MAX_BYTES} bytes`);
  };
  if (Number(req.headers['content-length'] ?? 0) > BODY_MAX_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > BODY_MAX_BYTES) {
        cleanup();
        // Keep an error listener: the client may reset while the rest is dropped.
        req.on('error', () => {});
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      if (!isUtf8(buf)) {
        reject(new LabError('APP_ERR_BAD_JSON', 'the body is not valid UTF-8'));
        return;
      }
      try {
        resolve(JSON.parse(buf.toString('utf8')) as unknown);
      } catch {
        reject(new LabError('APP_ERR_BAD_JSON', 'the body is not valid JSON'));
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
