/**
 * A strict parser of one HTTP/1.x request head (RFC 9112 §2–§5) for the client front. It accepts only what it
 * can frame with certainty: a request line `METHOD SP origin-form SP HTTP/1.0|1.1`, header lines `name: value`
 * with token names and visible values, each name once, and a body that is absent or `Content-Length: N`.
 * Anything else (`Transfer-Encoding`, `Upgrade`, `Expect`, `CONNECT`, obs-fold, a bare CR or LF, a repeated
 * header...) is `odd`: the connection goes to Node for the rest of its life, and Node answers it as it always did
 * (400, 431, chunked bodies, 100-continue). Erring towards odd costs only speed, never correctness.
 *
 * It reads the receive buffer on indexes and makes strings only for what the request keeps (issue 15: the
 * string-slicing parser allocated ~850 B per leased re-poll): the target, the values, and the names only when
 * they are not among the common ones below, whose strings are shared. A value equal to the one at the same place
 * in the connection's previous request (`previous`: a client sends the same `Host` and `Cookie` poll after poll)
 * is that request's string again, already in old space, instead of a new one to promote.
 */

/** A head the front can frame. */
export interface RequestHead {
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

const SP = 0x20;
const HTAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;
const NBSP = 0xa0;

// Byte classes, one bit each.
/** RFC 9110 §5.6.2 tchar. */
const TCHAR = 1;
/** A request-target byte: visible ASCII. */
const TARGET = 2;
/** A field-value byte: HTAB, SP, VCHAR, obs-text (what Node's strict parser accepts). */
const FIELD = 4;
const CLASS = new Uint8Array(256);
for (let b = 0x21; b <= 0x7e; b++) CLASS[b]! |= TARGET | FIELD;
for (let b = 0x80; b <= 0xff; b++) CLASS[b]! |= FIELD;
CLASS[SP]! |= FIELD;
CLASS[HTAB]! |= FIELD;
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") CLASS[c.charCodeAt(0)]! |= TCHAR;

/** Headers whose presence sends the whole connection to Node (framing or protocol switches the front does not do). */
const NODE_ONLY = new Set(['transfer-encoding', 'upgrade', 'expect', 'http2-settings']);

/** A name whose strings are shared: its lower-case form and its usual spelling on the wire. */
interface KnownName {
  lower: string;
  title: string;
}

/**
 * Names browsers, curl and Node's client send, and those the proxy looks at: matched on the bytes, so the request
 * gets shared strings instead of two new ones per header. Any other name works the same, with its own strings.
 */
const KNOWN_NAMES = [
  'host', 'connection', 'cookie', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'cache-control',
  'pragma', 'referer', 'origin', 'content-length', 'content-type', 'authorization', 'if-none-match', 'dnt',
  'priority', 'x-request-id', 'x-requested-with', 'keep-alive', 'te', 'sec-fetch-site', 'sec-fetch-mode',
  'sec-fetch-dest', 'sec-fetch-user', 'sec-ch-ua', 'sec-ch-ua-mobile', 'sec-ch-ua-platform',
  'upgrade-insecure-requests', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-host',
  'x-real-ip', 'forwarded', 'via',
];
/** Known names by length. */
const KNOWN_BY_LENGTH: KnownName[][] = [];
for (const lower of KNOWN_NAMES) {
  const title = lower.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
  (KNOWN_BY_LENGTH[lower.length] ??= []).push({ lower, title });
}

/** Does `buf[start, start + text.length)` spell `text` (one byte per character)? */
function bytesEqual(buf: Buffer, start: number, text: string): boolean {
  for (let k = 0; k < text.length; k++) if (buf[start + k] !== text.charCodeAt(k)) return false;
  return true;
}

/** The known name `buf[start, end)` spells in any case (its bytes are tchars), if any. */
function knownName(buf: Buffer, start: number, end: number): KnownName | undefined {
  const candidates = KNOWN_BY_LENGTH[end - start];
  if (candidates === undefined) return undefined;
  for (let c = 0; c < candidates.length; c++) {
    const { lower } = candidates[c]!;
    let k = 0;
    // `| 0x20` lower-cases a letter; for the other tchars it cannot turn one into a letter, digit or `-` of `lower`.
    while (k < lower.length && (buf[start + k]! | 0x20) === lower.charCodeAt(k)) k++;
    if (k === lower.length) return candidates[c];
  }
  return undefined;
}

/** The method string: the common ones shared. */
function methodOf(buf: Buffer, end: number): string {
  if (end === 3 && bytesEqual(buf, 0, 'GET')) return 'GET';
  if (end === 4 && bytesEqual(buf, 0, 'HEAD')) return 'HEAD';
  if (end === 4 && bytesEqual(buf, 0, 'POST')) return 'POST';
  return buf.toString('latin1', 0, end);
}

/** Where `rawHeaders` is collected (heads are parsed one at a time). */
const scratch: string[] = [];

/**
 * Parses `buf[0, end)` (the head, up to and excluding the blank line's CRLFCRLF) or returns null when the head
 * is odd. `previous`: the `rawHeaders` of the connection's previous request, whose value strings are reused where
 * the bytes are the same. Never throws.
 */
export function parseRequestHead(buf: Buffer, end: number, previous?: readonly string[] | null): RequestHead | null {
  // Request line: method SP target SP version, each space single.
  let i = 0;
  while (i < end && (CLASS[buf[i]!]! & TCHAR) !== 0) i++;
  if (i === 0 || i === end || buf[i] !== SP) return null;
  const method = methodOf(buf, i);
  if (method === 'CONNECT') return null;
  const urlStart = ++i;
  if (buf[i] !== 0x2f) return null; // origin-form starts with `/`
  while (i < end && (CLASS[buf[i]!]! & TARGET) !== 0) i++;
  if (i === end || buf[i] !== SP) return null;
  const urlEnd = i++;
  if (end - i < 8 || !bytesEqual(buf, i, 'HTTP/1.')) return null;
  const minor = buf[i + 7];
  if (minor !== 0x30 && minor !== 0x31) return null;
  const httpVersion = minor === 0x31 ? '1.1' : '1.0';
  i += 8;
  if (i < end) {
    if (buf[i] !== CR || buf[i + 1] !== LF) return null;
    i += 2;
  }
  const url = buf.toString('latin1', urlStart, urlEnd);

  const headers: Record<string, string> = {};
  const raw = scratch;
  let n = 0;
  let contentLength = 0;
  let connection = -1;
  let connectionEnd = -1;
  while (i < end) {
    const nameStart = i;
    while (i < end && (CLASS[buf[i]!]! & TCHAR) !== 0) i++;
    // An empty name is also obs-fold (a line starting with SP/HTAB).
    if (i === nameStart || i === end || buf[i] !== COLON) return null;
    const nameEnd = i++;
    const lineValueStart = i;
    let valueStart = i;
    while (i < end && (CLASS[buf[i]!]! & FIELD) !== 0) i++;
    const lineEnd = i;
    if (i < end) {
      if (buf[i] !== CR || buf[i + 1] !== LF) return null; // a control byte, bare CR or bare LF
      i += 2;
    }
    while (valueStart < lineEnd && (buf[valueStart] === SP || buf[valueStart] === HTAB)) valueStart++;
    let valueEnd = lineEnd;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    // Node keeps a NO-BREAK SPACE at the edge of a value, and JavaScript's trim (what the front once used) does not.
    if (valueEnd > valueStart && (buf[valueStart] === NBSP || buf[valueEnd - 1] === NBSP)) return null;

    const known = knownName(buf, nameStart, nameEnd);
    let name: string;
    let lower: string;
    if (known === undefined) {
      name = buf.toString('latin1', nameStart, nameEnd);
      lower = name.toLowerCase();
    } else {
      lower = known.lower;
      name = bytesEqual(buf, nameStart, lower) ? lower : bytesEqual(buf, nameStart, known.title) ? known.title : buf.toString('latin1', nameStart, nameEnd);
    }
    // `headers[lower]` also finds Object.prototype's names (`constructor`, `__proto__`): odd, as they always were.
    if (NODE_ONLY.has(lower) || headers[lower] !== undefined) return null;
    const before = previous?.[n + 1];
    const value =
      before !== undefined && before.length === valueEnd - valueStart && bytesEqual(buf, valueStart, before) ? before : buf.toString('latin1', valueStart, valueEnd);
    if (lower === 'content-length') {
      if (value.length === 0 || value.length > 15) return null;
      for (let k = valueStart; k < valueEnd; k++) if (buf[k]! < 0x30 || buf[k]! > 0x39) return null;
      contentLength = Number(value);
    } else if (lower === 'connection') {
      // Node does not see `close` in `close<HTAB>` (llhttp ends a token at SP or `,`), JavaScript's trim did.
      for (let k = lineValueStart; k < lineEnd; k++) if (buf[k] === HTAB) return null;
      connection = valueStart;
      connectionEnd = valueEnd;
    }
    headers[lower] = value;
    raw[n++] = name;
    raw[n++] = value;
  }
  // An array of exactly the head's size: it lives as long as the request (a parked one: long), and one grown
  // by pushes has room for 16.
  const rawHeaders = raw.slice(0, n);
  raw.fill('', 0, n);
  let keepAlive: boolean;
  if (connection === -1) keepAlive = httpVersion === '1.1';
  else {
    const tokens = connectionTokens(buf, connection, connectionEnd);
    // HTTP/1.0 with both: llhttp keeps the connection (it reads `close` on HTTP/1.1 only); the front once closed it.
    if (tokens === ODD || (tokens === (CLOSE | KEEP_ALIVE) && httpVersion === '1.0')) return null;
    keepAlive = (tokens & CLOSE) === 0 && (httpVersion === '1.1' || (tokens & KEEP_ALIVE) !== 0);
  }
  return { method, url, httpVersion, headers, rawHeaders, contentLength, keepAlive };
}

const CLOSE = 1;
const KEEP_ALIVE = 2;
/** A `Connection` value the front does not read: non-ASCII bytes, which JavaScript's trim and Node read differently. */
const ODD = -1;

/**
 * RFC 9112 §9.3: which of `close` and `keep-alive` the comma-separated `Connection` tokens in `buf[start, end)`
 * name, any case, spaces around each (no HTAB: the caller refused it); the keep-alive decision is then Node's: HTTP/1.1 persists unless `close`,
 * HTTP/1.0 only with `keep-alive`.
 */
function connectionTokens(buf: Buffer, start: number, end: number): number {
  let found = 0;
  let i = start;
  while (i <= end) {
    let tokenEnd = i;
    while (tokenEnd < end && buf[tokenEnd] !== 0x2c) {
      if (buf[tokenEnd]! >= 0x80) return ODD;
      tokenEnd++;
    }
    let s = i;
    let e = tokenEnd;
    while (s < e && buf[s] === SP) s++;
    while (e > s && buf[e - 1] === SP) e--;
    if (e - s === 5 && lowerEqual(buf, s, 'close')) found |= CLOSE;
    else if (e - s === 10 && lowerEqual(buf, s, 'keep-alive')) found |= KEEP_ALIVE;
    i = tokenEnd + 1;
  }
  return found;
}

/** Does `buf[start, start + lower.length)` spell `lower` (letters and `-`) in any case? */
function lowerEqual(buf: Buffer, start: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++) if ((buf[start + k]! | 0x20) !== lower.charCodeAt(k)) return false;
  return true;
}
