/**
 * Which headers may cross the proxy. Two rules meet here: no `Grip-*` header
 * ever crosses it in either direction (docs/protocol.md §1, §6), and
 * hop-by-hop headers describe one connection, not the message (RFC 9110 §7.6.1),
 * so a proxy never copies them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isGripHeader } from '../../protocol/headers.js';

/** Header values as the proxy keeps them: lower-case names, `set-cookie` as a list. */
export type HeaderMap = Record<string, string | string[]>;

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Is `name` (any case) a hop-by-hop header? */
export function isHopByHopHeader(name: string): boolean {
  return HOP_BY_HOP.has(name.toLowerCase());
}

/** Never removed because `Connection` names them: a peer must not be able to unframe a message. */
const PROTECTED = new Set(['content-length', 'transfer-encoding', 'host']);

/** Token sets of the short `Connection` values seen (`keep-alive`, `close`, none): read-only, shared, bounded. */
const tokenCache = new Map<string, ReadonlySet<string>>();
const TOKEN_CACHE_MAX = 64;
const TOKEN_CACHE_KEY_MAX = 64;

/** Header names the `Connection` header lists: also hop-by-hop for this message (RFC 9110 §7.6.1). */
function connectionTokens(headers: IncomingHttpHeaders): ReadonlySet<string> {
  const value = headers.connection;
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  // Every request and answer crosses here with one of a few values: parse each once, not per message.
  let tokens = tokenCache.get(text);
  if (tokens !== undefined) return tokens;
  tokens = new Set(text.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== '' && !PROTECTED.has(t)));
  if (tokenCache.size < TOKEN_CACHE_MAX && text.length <= TOKEN_CACHE_KEY_MAX) tokenCache.set(text, tokens);
  return tokens;
}

/**
 * Copies `headers` without `Grip-*` and hop-by-hop headers (and those named by
 * `Connection`). With `dropLength`, also without `Content-Length`, for bodies the
 * proxy re-frames itself.
 */
export function endToEndHeaders(headers: IncomingHttpHeaders, { dropLength = false } = {}): HeaderMap {
  const named = connectionTokens(headers);
  const out: HeaderMap = {};
  // for..in, not Object.entries: no pair array per header on every forwarded answer.
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (isGripHeader(lower) || HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    if (dropLength && lower === 'content-length') continue;
    out[lower] = value;
  }
  return out;
}

/**
 * Prepares a client request's headers for forwarding, in place: deletes every
 * `Grip-*` header (a client must never forge an instruction, signature or
 * cursor, docs/protocol.md §1.1) and the hop-by-hop ones, except
 * `Transfer-Encoding`, which frames the body being piped on. Returns how many
 * `Grip-*` headers were removed.
 */
export function stripRequestHeaders(headers: IncomingHttpHeaders): number {
  const named = connectionTokens(headers);
  let grip = 0;
  for (const name of Object.keys(headers)) {
    if (isGripHeader(name)) {
      delete headers[name];
      grip++;
    } else if ((HOP_BY_HOP.has(name) && name !== 'transfer-encoding') || named.has(name)) {
      delete headers[name];
    }
  }
  return grip;
}
