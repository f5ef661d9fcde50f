/**
 * The client front's head parser as it was before issue 15's "head parsed on indexes" change (commit b41e4e4,
 * proxy/http/front/request-head.ts), kept verbatim as the reference the new parser is tested against
 * (test/proxy/request-head.test.ts): on every head the new one accepts, both must read the same request.
 */
/** A head the front can frame. */
export interface ReferenceRequestHead {
  method: string;
  url: string;
  /** `'1.0'` or `'1.1'`. */
  httpVersion: string;
  /** Lower-case names, each once. */
  headers: Record<string, string>;
  /** Names as sent and values, alternating. */
  rawHeaders: string[];
  /** Body bytes that follow the head (0 without `Content-Length`). */
  contentLength: number;
  /** The client's `Connection` asks to keep the connection (HTTP/1.1 default, HTTP/1.0 only with `keep-alive`). */
  keepAlive: boolean;
}

/** Headers whose presence sends the whole connection to Node (framing or protocol switches the front does not do). */
const NODE_ONLY = new Set(['transfer-encoding', 'upgrade', 'expect', 'http2-settings']);

/** RFC 9110 §5.6.2 tchar. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values: HTAB, SP, VCHAR, obs-text (what Node's strict parser accepts). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** An origin-form target: visible ASCII, starting with `/`. */
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;
const CONTENT_LENGTH = /^[0-9]{1,15}$/;

/**
 * Parses `text` (the head in latin1, up to and excluding the blank line's CRLFCRLF) or returns null when the head
 * is odd. Never throws.
 */
export function referenceParseRequestHead(text: string): ReferenceRequestHead | null {
  // A bare CR or LF inside a line is odd (Node refuses some, tolerates others: it decides).
  const lineEnd = text.indexOf('\r\n');
  const requestLine = lineEnd === -1 ? text : text.slice(0, lineEnd);
  const sp1 = requestLine.indexOf(' ');
  const sp2 = requestLine.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 === -1 || requestLine.indexOf(' ', sp2 + 1) !== -1) return null;
  const method = requestLine.slice(0, sp1);
  const url = requestLine.slice(sp1 + 1, sp2);
  const version = requestLine.slice(sp2 + 1);
  let httpVersion: string;
  if (version === 'HTTP/1.1') httpVersion = '1.1';
  else if (version === 'HTTP/1.0') httpVersion = '1.0';
  else return null;
  if (!TOKEN.test(method) || method === 'CONNECT' || !ORIGIN_FORM.test(url)) return null;

  const headers: Record<string, string> = {};
  const rawHeaders: string[] = [];
  let contentLength = 0;
  let connection: string | undefined;
  let start = lineEnd === -1 ? text.length : lineEnd + 2;
  while (start < text.length) {
    let end = text.indexOf('\r\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end);
    start = end + 2;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return null; // also refuses obs-fold (a line starting with SP/HTAB)
    const value = line.slice(colon + 1).trim();
    if (!FIELD_VALUE.test(value) || value.includes('\r') || value.includes('\n')) return null;
    const lower = name.toLowerCase();
    if (NODE_ONLY.has(lower) || headers[lower] !== undefined) return null;
    if (lower === 'content-length') {
      if (!CONTENT_LENGTH.test(value)) return null;
      contentLength = Number(value);
    } else if (lower === 'connection') {
      connection = value.toLowerCase();
    }
    headers[lower] = value;
    rawHeaders.push(name, value);
  }
  return { method, url, httpVersion, headers, rawHeaders, contentLength, keepAlive: keepsAlive(httpVersion, connection) };
}

/** RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive` (as Node decides it). */
function keepsAlive(httpVersion: string, connection: string | undefined): boolean {
  if (connection === undefined) return httpVersion === '1.1';
  let close = false;
  let keep = false;
  for (const token of connection.split(',')) {
    const t = token.trim();
    if (t === 'close') close = true;
    else if (t === 'keep-alive') keep = true;
  }
  if (close) return false;
  return httpVersion === '1.1' || keep;
}
