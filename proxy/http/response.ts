/**
 * The responses the proxy writes itself (everything but pass-through): the
 * held/timeout response, a published or pushed item merged onto it
 * (docs/protocol.md §6), and the safe write to a client that may be gone.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { HttpResponseFormat } from '../../protocol/control-api.js';
import { isGripHeader } from '../../protocol/headers.js';
import { isHopByHopHeader, type HeaderMap } from './header-filter.js';
import { REQUEST_ID_HEADER, responseRequestId } from './request-id.js';

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

/** Decodes a validated `http-response` format (see control/control-validation.ts). */
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

/**
 * An item as every subscriber gets it (docs/protocol.md §6): status, reason, its own headers filtered and
 * lower-cased, and its body with the `Content-Length`. Built once per item, not once per subscriber: a publish
 * to 10,000 parked requests writes 10,000 responses from one of these.
 */
export interface PreparedItem {
  code: number;
  reason: string;
  /** The item's headers minus framing, hop-by-hop and `Grip-*`, in order (repeats kept: they add values). */
  headers: ReadonlyArray<readonly [string, string]>;
  /** The names in `headers`: these replace the held response's. */
  names: ReadonlySet<string>;
  body: Buffer;
  contentLength: string;
}

const prepared = new WeakMap<ItemResponse, PreparedItem>();

/** The prepared form of `item`, made on first use and remembered for as long as the item lives. */
export function prepareItem(item: ItemResponse): PreparedItem {
  let ready = prepared.get(item);
  if (ready !== undefined) return ready;
  const headers: Array<readonly [string, string]> = [];
  const names = new Set<string>();
  for (const [name, value] of item.headers) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || isHopByHopHeader(lower) || isGripHeader(lower)) continue;
    headers.push([lower, value]);
    names.add(lower);
  }
  const code = item.code ?? 200;
  ready = { code, reason: item.reason ?? STATUS_CODES[code] ?? '', headers, names, body: item.body, contentLength: String(item.body.length) };
  prepared.set(item, ready);
  return ready;
}

/**
 * Writes `item` merged onto `held` (the same response as `writeResponse(res, mergeItemResponse(held, item))`)
 * as a flat header list, without building a merged copy per subscriber. False, writing nothing, when the
 * client is gone or answered; never throws.
 */
export function writeItem(res: ServerResponse, held: HeldResponse, item: PreparedItem): boolean {
  if (isResponseClosed(res)) return false;
  const raw: string[] = [];
  const requestId = responseRequestId(res);
  for (const name in held.headers) {
    if (item.names.has(name) || name === 'content-length' || isHopByHopHeader(name) || isGripHeader(name)) continue;
    if (requestId !== undefined && name === REQUEST_ID_HEADER) continue;
    const value = held.headers[name]!;
    if (typeof value === 'string') raw.push(name, value);
    else for (const one of value) raw.push(name, one);
  }
  for (const [name, value] of item.headers) {
    if (requestId === undefined || name !== REQUEST_ID_HEADER) raw.push(name, value);
  }
  if (requestId !== undefined) raw.push(REQUEST_ID_HEADER, requestId);
  raw.push('content-length', item.contentLength);
  try {
    res.writeHead(item.code, item.reason, raw);
    res.end(item.body);
    return true;
  } catch {
    res.destroy();
    return false;
  }
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
  const requestId = responseRequestId(res);
  if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
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
