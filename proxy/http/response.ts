/**
 * The responses the proxy writes itself (everything but pass-through): the
 * held/timeout response, a published or pushed item merged onto it
 * (docs/protocol.md §6), and the safe write to a client that may be gone.
 */
import { STATUS_CODES } from 'node:http';
import type { ClientResponse } from './client-message.js';
import type { HttpResponseFormat } from '../../protocol/control-api.js';
import { isGripHeader } from '../../protocol/headers.js';
import { isHopByHopHeader, type HeaderMap } from './header-filter.js';
import { jsonpOf, wrapJsonp } from './jsonp.js';
import { REQUEST_ID_HEADER, responseRequestId } from './request-id.js';
import { FrontResponse } from './front/front-response.js';
import { encodeItem, type EncodedItem } from './front/item-answer.js';

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

/** The names an item's `Grip-Expose-Headers` lists (lower-case), or null without one. */
function hiddenNames(item: ItemResponse): Set<string> | null {
  let hidden: Set<string> | null = null;
  for (const [name, value] of item.headers) {
    if (name.toLowerCase() !== 'grip-expose-headers') continue;
    for (const part of value.split(',')) {
      const one = part.trim().toLowerCase();
      if (one !== '') (hidden ??= new Set()).add(one);
    }
  }
  return hidden;
}

/**
 * The response delivered to a parked client: the held response's headers
 * (minus framing) overridden case-insensitively by the item's, the item's status
 * (default 200, standard reason) and body. `Grip-*` and hop-by-hop headers of the
 * item are ignored (docs/protocol.md §6).
 */
export function mergeItemResponse(held: HeldResponse, item: ItemResponse): HeldResponse {
  const hidden = hiddenNames(item);
  const headers: HeaderMap = {};
  for (const [name, value] of Object.entries(held.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || isHopByHopHeader(lower) || isGripHeader(lower) || hidden?.has(lower)) continue;
    headers[lower] = value;
  }
  const fromItem = new Set<string>();
  for (const [name, value] of item.headers) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || isHopByHopHeader(lower) || isGripHeader(lower) || hidden?.has(lower)) continue;
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
  /** Names the item's `Grip-Expose-Headers` lists: Pushpin 1.36 removes them from the delivered response. */
  hidden: ReadonlySet<string> | null;
  body: Buffer;
  /** `body` as a latin1 string (one character per byte): what `endWith` writes, made once per item. */
  bodyLatin1: string;
  contentLength: string;
  /** The answer's shared bytes for the client front, made on its first answer (null: `writeHead` must check it). */
  encoded: EncodedItem | null | undefined;
}

const prepared = new WeakMap<ItemResponse, PreparedItem>();

/** The prepared form of `item`, made on first use and remembered for as long as the item lives. */
export function prepareItem(item: ItemResponse): PreparedItem {
  let ready = prepared.get(item);
  if (ready !== undefined) return ready;
  const hidden = hiddenNames(item);
  const headers: Array<readonly [string, string]> = [];
  const names = new Set<string>();
  for (const [name, value] of item.headers) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || isHopByHopHeader(lower) || isGripHeader(lower) || hidden?.has(lower)) continue;
    headers.push([lower, value]);
    names.add(lower);
  }
  const code = item.code ?? 200;
  ready = { code, reason: item.reason ?? STATUS_CODES[code] ?? '', headers, names, hidden, body: item.body, bodyLatin1: item.body.toString('latin1'), contentLength: String(item.body.length), encoded: undefined };
  prepared.set(item, ready);
  return ready;
}

/**
 * Writes `item` merged onto `held` (the same response as `writeResponse(res, mergeItemResponse(held, item))`)
 * as a flat header list, without building a merged copy per subscriber. False, writing nothing, when the
 * client is gone or answered; never throws.
 */
export function writeItem(res: ClientResponse, held: HeldResponse, item: PreparedItem): boolean {
  if (isResponseClosed(res)) return false;
  if (jsonpOf(res) !== undefined) return writeResponse(res, mergePrepared(held, item));
  const requestId = responseRequestId(res);
  // The client front's answers (every leased re-poll): the item's bytes encoded once, one Buffer per answer.
  if (res instanceof FrontResponse && requestId !== undefined) {
    if (item.encoded === undefined) item.encoded = encodeItem(item);
    if (item.encoded !== null && res.endItem(item.encoded, item, held, requestId)) return true;
  }
  return writeItemHead(res, held, item, requestId);
}

/**
 * `writeItem` through `writeHead`: node:http's responses, and the front's when the encoded path leaves the
 * checks to `writeHead`. Exported for the tests that hold the encoded bytes to these.
 */
export function writeItemHead(res: ClientResponse, held: HeldResponse, item: PreparedItem, requestId = responseRequestId(res)): boolean {
  if (isResponseClosed(res)) return false;
  const raw: string[] = [];
  for (const name in held.headers) {
    if (item.names.has(name) || name === 'content-length' || isHopByHopHeader(name) || isGripHeader(name) || item.hidden?.has(name)) continue;
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
    endWith(res, item.bodyLatin1);
    return true;
  } catch {
    res.destroy();
    return false;
  }
}

/** `item` merged onto `held` as one response (what `writeItem` writes), for the rare answers that need a copy (JSON-P). */
function mergePrepared(held: HeldResponse, item: PreparedItem): HeldResponse {
  const headers: HeaderMap = {};
  for (const name in held.headers) {
    if (item.names.has(name) || name === 'content-length' || isHopByHopHeader(name) || isGripHeader(name) || item.hidden?.has(name)) continue;
    headers[name] = held.headers[name]!;
  }
  for (const [name, value] of item.headers) {
    const previous = headers[name];
    headers[name] = previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  return { code: item.code, reason: item.reason, headers, body: item.body };
}

/**
 * Ends `res` (its head set, with a `Content-Length`) with `bodyLatin1` in one plain write to the socket (issue 15):
 * Node joins its head with a string first chunk into one string (`OutgoingMessage._send`). Left to itself it then
 * sends that string and an empty chunk as one `writev`: `write()` corks the socket until the next tick (and
 * `end(chunk)` corks it too), so `end()` finds the chunk still buffered and queues its own empty one behind it.
 * Releasing the cork `write()` added (only that one: a socket someone else corked is left alone) sends the chunk
 * at once; an `end()` that finds nothing buffered writes nothing more. latin1 maps each byte to one character,
 * so any body goes out byte for byte; a HEAD answer still sends the head alone (Node drops body writes).
 */
function endWith(res: ClientResponse, bodyLatin1: string): void {
  const socket = res.socket;
  const uncorked = socket !== null && socket.writableCorked === 0;
  if (bodyLatin1.length > 0) res.write(bodyLatin1, 'latin1');
  // Read again: write() changed it (TypeScript keeps the narrowing from above).
  if (uncorked && (socket.writableCorked as number) === 1) socket.uncork();
  res.end();
}

/**
 * The response `writeResponse` wrote to each client, so observers can tell what was answered (error codes): on
 * the response itself, not in a WeakMap (a large ephemeron table costs every garbage collection, issue 15).
 */
const WRITTEN = Symbol('writtenResponse');
type WithWritten = ClientResponse & { [WRITTEN]?: HeldResponse };

/** What `writeResponse` wrote to `res`, if it wrote it (not pass-through answers). */
export function writtenResponse(res: ClientResponse): HeldResponse | undefined {
  return (res as WithWritten)[WRITTEN];
}

/** True when nothing more can be written to `res` (answered already, or the client went away). */
export function isResponseClosed(res: ClientResponse): boolean {
  return res.headersSent || res.writableEnded || res.destroyed;
}

/**
 * Writes `response` (plus `extraHeaders`, which win) with a `Content-Length`.
 * Returns false, writing nothing, when the client is already gone or answered;
 * never throws.
 */
export function writeResponse(res: ClientResponse, response: HeldResponse, extraHeaders: HeaderMap = {}): boolean {
  if (isResponseClosed(res)) return false;
  const jsonp = jsonpOf(res);
  // A JSON-P client reads status, headers and body from the script; the HTTP answer is a 200 (http/jsonp.ts).
  const sent = jsonp === undefined ? response : wrapJsonp(response, response.reason ?? STATUS_CODES[response.code] ?? '', jsonp);
  const headers: HeaderMap = { ...sent.headers, ...extraHeaders, 'content-length': String(sent.body.length) };
  const requestId = responseRequestId(res);
  if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
  try {
    res.writeHead(sent.code, sent.reason ?? STATUS_CODES[sent.code] ?? '', headers);
    endWith(res, sent.body.toString('latin1'));
    (res as WithWritten)[WRITTEN] = response;
    return true;
  } catch {
    // Only reachable with a header the validators should have refused; do not leave the client hanging.
    res.destroy();
    return false;
  }
}
