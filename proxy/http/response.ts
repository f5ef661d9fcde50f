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
 * Held responses with the same status, headers and small body are one object (issue 15): every parked
 * request of one kind (e.g. every chat poll) keeps the same template instead of its own copy, and a publish
 * builds the header list of (template x item) once for all of them (`writeItem`). Weakly held: a template
 * is forgotten when no parked request keeps it. Bodies past `INTERN_MAX_BODY` are not shared.
 */
const INTERN_MAX_BODY = 1024;
const INTERN_MAX_ENTRIES = 10_000;
const interned = new Map<string, WeakRef<HeldResponse>>();
const forgetInterned = new FinalizationRegistry<string>((key) => {
  if (interned.get(key)?.deref() === undefined) interned.delete(key);
});

/** The shared object equal to `response` (itself, the first time). */
export function internHeldResponse(response: HeldResponse): HeldResponse {
  if (response.body.length > INTERN_MAX_BODY) return response;
  let key = `${response.code}\n${response.reason ?? ''}\n`;
  for (const name in response.headers) {
    const value = response.headers[name]!;
    key += typeof value === 'string' ? `${name}\0${value}\n` : `${name}\0${value.join('\0')}\n`;
  }
  key += response.body.toString('latin1');
  const existing = interned.get(key)?.deref();
  if (existing !== undefined) return existing;
  if (interned.size >= INTERN_MAX_ENTRIES) return response;
  interned.set(key, new WeakRef(response));
  forgetInterned.register(response, key);
  return response;
}

/** Per prepared item: the header list merged onto each held template, without the per-client parts. */
const mergedHeads = new WeakMap<PreparedItem, WeakMap<HeldResponse, string[]>>();

/** `held`'s headers the item does not replace, then the item's, minus framing and `X-Request-Id` (flat name, value list). */
function mergedHead(held: HeldResponse, item: PreparedItem): string[] {
  let byHeld = mergedHeads.get(item);
  if (byHeld === undefined) mergedHeads.set(item, (byHeld = new WeakMap()));
  let raw = byHeld.get(held);
  if (raw !== undefined) return raw;
  raw = [];
  for (const name in held.headers) {
    if (item.names.has(name) || name === 'content-length' || name === REQUEST_ID_HEADER || isHopByHopHeader(name) || isGripHeader(name)) continue;
    const value = held.headers[name]!;
    if (typeof value === 'string') raw.push(name, value);
    else for (const one of value) raw.push(name, one);
  }
  for (const [name, value] of item.headers) {
    if (name !== REQUEST_ID_HEADER) raw.push(name, value);
  }
  byHeld.set(held, raw);
  return raw;
}

/**
 * Writes `item` merged onto `held` (the same response as `writeResponse(res, mergeItemResponse(held, item))`)
 * as a flat header list, without building a merged copy per subscriber: the list of (held x item) is built
 * once per publish for every request parked with the same template, and each client adds its request id
 * and the length. False, writing nothing, when the client is gone or answered; never throws.
 */
export function writeItem(res: ServerResponse, held: HeldResponse, item: PreparedItem): boolean {
  if (isResponseClosed(res)) return false;
  const requestId = responseRequestId(res);
  const raw = requestId === undefined ? headWithoutRequestId(held, item) : mergedHead(held, item).concat(REQUEST_ID_HEADER, requestId, 'content-length', item.contentLength);
  try {
    res.writeHead(item.code, item.reason, raw);
    res.end(item.body);
    return true;
  } catch {
    res.destroy();
    return false;
  }
}

/** The header list for a response with no request id of its own (not a client port request): any `X-Request-Id` passes. */
function headWithoutRequestId(held: HeldResponse, item: PreparedItem): string[] {
  const raw: string[] = [];
  for (const name in held.headers) {
    if (item.names.has(name) || name === 'content-length' || isHopByHopHeader(name) || isGripHeader(name)) continue;
    const value = held.headers[name]!;
    if (typeof value === 'string') raw.push(name, value);
    else for (const one of value) raw.push(name, one);
  }
  for (const [name, value] of item.headers) raw.push(name, value);
  raw.push('content-length', item.contentLength);
  return raw;
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
