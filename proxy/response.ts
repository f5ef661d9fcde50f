/**
 * The responses the proxy writes itself (everything but pass-through): the
 * held/timeout response, a published or pushed item merged onto it
 * (docs/protocol.md §6), and the safe write to a client that may be gone.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { HttpResponseFormat } from '../protocol/control-api.js';
import { isGripHeader } from '../protocol/headers.js';
import { isHopByHopHeader, type HeaderMap } from './header-filter.js';

/** A complete response the proxy can write: status, optional reason, headers (lower-case names), body. */
export interface HeldResponse {
  code: number;
  /** Reason phrase; default the standard one for `code`. */
  reason?: string;
  headers: HeaderMap;
  body: Buffer;
}

/** An item's `http-response` format, decoded (body-bin is base64-decoded, headers as pairs). */
export interface ItemResponse {
  /** Default 200. */
  code?: number;
  reason?: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

/** Decodes a validated `http-response` format (see control-validation.ts). */
export function decodeItemResponse(format: HttpResponseFormat): ItemResponse {
  const headers = Array.isArray(format.headers) ? format.headers : Object.entries(format.headers ?? {});
  const body =
    format['body-bin'] !== undefined ? Buffer.from(format['body-bin'], 'base64') : Buffer.from(format.body ?? '', 'utf8');
  const item: ItemResponse = { headers: headers.map(([n, v]) => [n, v]), body };
  if (format.code !== undefined) item.code = format.code;
  if (format.reason !== undefined) item.reason = format.reason;
  return item;
}

/**
 * The response delivered to a parked client: the held response's headers
 * (minus framing) overridden case-insensitively by the item's, the item's status
 * (default 200, standard reason) and body. `Grip-*` and hop-by-hop headers of the
 * item are ignored (docs/protocol.md §6).
 */
export function mergeItemResponse(held: HeldResponse, item: ItemResponse): HeldResponse {
  const headers: HeaderMap = {};
  for (const [name, value] of Object.entries(held.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || isHopByHopHeader(lower) || isGripHeader(lower)) continue;
    headers[lower] = value;
  }
  const fromItem = new Set<string>();
  for (const [name, value] of item.headers) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || isHopByHopHeader(lower) || isGripHeader(lower)) continue;
    // The first item header of a name replaces the held one; repeats add values (e.g. Set-Cookie).
    const previous = fromItem.has(lower) ? headers[lower] : undefined;
    headers[lower] = previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
    fromItem.add(lower);
  }
  const merged: HeldResponse = { code: item.code ?? 200, headers, body: item.body };
  if (item.reason !== undefined) merged.reason = item.reason;
  return merged;
}

/** The response `writeResponse` wrote to each client, so observers can tell what was answered (error codes). */
const written = new WeakMap<ServerResponse, HeldResponse>();

/** What `writeResponse` wrote to `res`, if it wrote it (not pass-through answers). */
export function writtenResponse(res: ServerResponse): HeldResponse | undefined {
  return written.get(res);
}

/** True when nothing more can be written to `res` (answered already, or the client went away). */
export function isResponseClosed(res: ServerResponse): boolean {
  return res.headersSent || res.writableEnded || res.destroyed;
}

/**
 * Writes `response` (plus `extraHeaders`, which win) with a `Content-Length`.
 * Returns false, writing nothing, when the client is already gone or answered;
 * never throws.
 */
export function writeResponse(res: ServerResponse, response: HeldResponse, extraHeaders: HeaderMap = {}): boolean {
  if (isResponseClosed(res)) return false;
  const headers: HeaderMap = { ...response.headers, ...extraHeaders, 'content-length': String(response.body.length) };
  try {
    res.writeHead(response.code, response.reason ?? STATUS_CODES[response.code] ?? '', headers);
    res.end(response.body);
    written.set(res, response);
    return true;
  } catch {
    // Only reachable with a header the validators should have refused; do not leave the client hanging.
    res.destroy();
    return false;
  }
}
