/**
 * A delivered item's answer as the client front writes it (issue 15: one publish answers thousands of parked
 * re-polls with the same item). The bytes are exactly those `FrontResponse.writeHead` + `write` + `end` produce
 * for `writeItem`'s header list (http/response.ts): status line, the held response's headers the item does not
 * replace, the item's headers, `x-request-id`, `content-length`, `Date` (unless a header is one), `Connection`
 * (+ `Keep-Alive`), the body. What the item decides (status line, its header lines, the length, the body) is
 * encoded once per item; each answer copies those parts, the held response's few lines and its request id into
 * one Buffer, written with one `socket.write`. The window heap profile had the per-answer head string at 1.1 KB
 * and the header list at 320 B per delivery, the header checks (`add`) at 4% of the proxy's busy time.
 *
 * Anything this does not encode the way `writeHead` would (an invalid header, which `writeHead` refuses, or a
 * held header that frames the message) returns null: the caller takes the `writeHead` path, which decides it.
 */
import type { HeldResponse, PreparedItem } from '../response.js';
import { isHopByHopHeader } from '../header-filter.js';
import { REQUEST_ID_HEADER } from '../request-id.js';
import { httpDateLine } from './http-date.js';

/** The parts of an item's answer every subscriber shares (made on the first answer, kept on the prepared item). */
export interface EncodedItem {
  /** `HTTP/1.1 CODE REASON\r\n`. */
  readonly statusLine: Buffer;
  /** The item's header lines (its own `x-request-id` left out: each answer carries its request's), then `x-request-id: `. */
  readonly itemLines: Buffer;
  /** `\r\ncontent-length: N\r\n`: ends the request id's line. */
  readonly lengthLine: Buffer;
  /** An item header is `Date`: the answer carries no other. */
  readonly hasDate: boolean;
  /** 1xx, 204, 304: the head alone, as Node writes them. */
  readonly bodyless: boolean;
  readonly body: Buffer;
}

const CLOSE_LINES = Buffer.from('Connection: close\r\n\r\n', 'latin1');
let keepAliveHeader: string | null = null;
let keepAliveLines = CLOSE_LINES;

/** `Connection: keep-alive`, the connection's `Keep-Alive` line and the blank line (every connection of a front shares it). */
function keepAliveLinesFor(header: string): Buffer {
  if (header !== keepAliveHeader) {
    keepAliveHeader = header;
    keepAliveLines = Buffer.from(`Connection: keep-alive\r\n${header}\r\n`, 'latin1');
  }
  return keepAliveLines;
}

/** RFC 9110 tchar, as `writeHead`'s TOKEN pattern: a table, since every held header name is checked per answer. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

function isToken(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** A field value `writeHead` accepts (HTAB, SP-~, obs-text): one byte a character in latin1. */
function isFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/** `isGripHeader` (protocol/headers.ts) without the slice it allocates: this runs per held header per answer. */
function isGripName(name: string): boolean {
  return (
    name.length >= 5 &&
    (name.charCodeAt(0) | 0x20) === 0x67 && // g
    (name.charCodeAt(1) | 0x20) === 0x72 && // r
    (name.charCodeAt(2) | 0x20) === 0x69 && // i
    (name.charCodeAt(3) | 0x20) === 0x70 && // p
    name.charCodeAt(4) === 0x2d // -
  );
}

/** Does `writeItem` copy the held header `name` into an answer that carries its own request id? */
function keepsHeld(name: string, item: PreparedItem): boolean {
  return !(item.names.has(name) || name === 'content-length' || name === REQUEST_ID_HEADER || isHopByHopHeader(name) || isGripName(name) || item.hidden?.has(name) === true);
}

/** Names `writeHead` reads as framing (lower-cased): a held one the filter lets through is left to it. */
function framingName(name: string): 'date' | 'framing' | null {
  const n = name.length;
  if (n !== 4 && n !== 10 && n !== 14 && n !== 17) return null;
  const lower = name.toLowerCase();
  if (lower === 'date') return 'date';
  return lower === 'connection' || lower === 'content-length' || lower === 'transfer-encoding' ? 'framing' : null;
}

/** The item's shared parts, or null when `writeHead` would refuse the item's status or headers. */
export function encodeItem(item: PreparedItem): EncodedItem | null {
  if (!isFieldValue(item.reason)) return null;
  let lines = '';
  let hasDate = false;
  for (const [name, value] of item.headers) {
    if (name === REQUEST_ID_HEADER) continue;
    if (!isToken(name) || !isFieldValue(value)) return null;
    // prepareItem already removed framing and hop-by-hop headers; a Date of the item's replaces Node's.
    if (name === 'date') hasDate = true;
    lines += `${name}: ${value}\r\n`;
  }
  const code = item.code;
  return {
    statusLine: Buffer.from(`HTTP/1.1 ${code} ${item.reason}\r\n`, 'latin1'),
    itemLines: Buffer.from(`${lines}${REQUEST_ID_HEADER}: `, 'latin1'),
    lengthLine: Buffer.from(`\r\ncontent-length: ${item.contentLength}\r\n`, 'latin1'),
    hasDate,
    bodyless: code === 204 || code === 304 || (code >= 100 && code < 200),
    body: item.body,
  };
}

/**
 * The whole answer of `encoded` merged onto `held` for a request with id `requestId`: keep-alive with
 * `keepAlive` (the connection's `Keep-Alive` line, or '' for none) or `Connection: close` with null; the body
 * unless `withBody` is false (HEAD). Null when `writeHead` must decide (see the file comment).
 */
export function itemAnswerBytes(encoded: EncodedItem, item: PreparedItem, held: HeldResponse, requestId: string, keepAlive: string | null, withBody: boolean): Buffer | null {
  // First pass: how many bytes the held response adds. Its names and values are checked as they are copied.
  const headers = held.headers;
  let heldBytes = 0;
  let hasDate = encoded.hasDate;
  for (const name in headers) {
    if (!keepsHeld(name, item)) continue;
    const framing = framingName(name);
    if (framing === 'framing') return null;
    if (framing === 'date') hasDate = true;
    const value = headers[name]!;
    if (typeof value === 'string') heldBytes += name.length + value.length + 4;
    else for (const one of value) heldBytes += name.length + one.length + 4;
  }
  const date = hasDate ? null : httpDateLine();
  const connection = keepAlive === null ? CLOSE_LINES : keepAliveLinesFor(keepAlive);
  const body = withBody && !encoded.bodyless ? encoded.body : null;
  const length =
    encoded.statusLine.length + heldBytes + encoded.itemLines.length + requestId.length + encoded.lengthLine.length + (date?.length ?? 0) + connection.length + (body?.length ?? 0);
  const out = Buffer.allocUnsafe(length);
  out.set(encoded.statusLine, 0);
  let at = encoded.statusLine.length;
  if (heldBytes > 0) {
    for (const name in headers) {
      if (!keepsHeld(name, item)) continue;
      const value = headers[name]!;
      if (typeof value === 'string') at = putLine(out, at, name, value);
      else for (const one of value) if (at !== -1) at = putLine(out, at, name, one);
      if (at === -1) return null;
    }
  }
  out.set(encoded.itemLines, at);
  at = putValue(out, at + encoded.itemLines.length, requestId);
  if (at === -1) return null;
  out.set(encoded.lengthLine, at);
  at += encoded.lengthLine.length;
  if (date !== null) {
    out.set(date, at);
    at += date.length;
  }
  out.set(connection, at);
  at += connection.length;
  if (body !== null) out.set(body, at);
  return out;
}

/**
 * Copies `value` at `at` (latin1: one byte a character); -1 at a character `writeHead` refuses in a field value
 * (it accepts HTAB, SP to `~` and obs-text). Checked while copying: one pass over the bytes, no check per held response.
 */
function putValue(out: Buffer, at: number, value: string): number {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return -1;
    out[at + i] = c;
  }
  return at + value.length;
}

/** `name: value\r\n` at `at`; -1 when `writeHead` would refuse the name (not a token) or the value. */
function putLine(out: Buffer, at: number, name: string, value: string): number {
  if (name.length === 0) return -1;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return -1;
    out[at + i] = c;
  }
  at += name.length;
  out[at] = 0x3a; // ':'
  out[at + 1] = 0x20;
  at = putValue(out, at + 2, value);
  if (at === -1) return -1;
  out[at] = 0x0d;
  out[at + 1] = 0x0a;
  return at + 2;
}
