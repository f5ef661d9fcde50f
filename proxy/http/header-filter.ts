/**
 * Which headers may cross the proxy. Three rules meet here: no `Grip-*` header
 * ever crosses it in either direction (docs/protocol.md §1, §6); a client's
 * headers about the client or its original request (`Forwarded`,
 * `X-Forwarded-*`, `X-Real-IP`, ...) never reach the app, since only the proxy
 * knows those facts (§1.2); and hop-by-hop headers describe one connection, not
 * the message (RFC 9110 §7.6.1), so a proxy never copies them. Request header
 * names are compared with `_` read as `-`: CGI-style stacks (WSGI, PHP, Rack)
 * turn both into `HTTP_GRIP_SIG`, so `Grip_Sig` would pass for `Grip-Sig` there.
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

/**
 * Never removed because `Connection` names them: a peer must not be able to unframe a message, nor remove
 * what the proxy itself sets (`X-Request-Id` is assigned before the headers are filtered).
 */
const PROTECTED = new Set(['content-length', 'transfer-encoding', 'host', 'x-request-id']);

/** Client-written headers that claim to describe the client or its original request; `X-Forwarded-*` too. */
const FORWARDING_FAMILY = new Set([
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'client-ip',
  'x-original-host',
  'x-host',
  'x-url-scheme',
  'front-end-https',
]);

/**
 * Is `name` (lower-case, as Node gives incoming names) a header only the proxy may send the app: any `_`/`-`
 * spelling of a `Grip-*` or forwarding header, or a spelling of `X-Request-Id` other than the one the proxy sets?
 */
export function isProxyOwnedRequestHeader(name: string): boolean {
  // `_` read as `-`: the spelling CGI-style stacks fold both into. Every request pays this, so no copy without `_`.
  const normal = name.includes('_') ? name.replaceAll('_', '-') : name;
  if (normal.startsWith('grip-') || normal.startsWith('x-forwarded-') || FORWARDING_FAMILY.has(normal)) return true;
  return normal === 'x-request-id' && name !== 'x-request-id';
}

/** Token sets of the short `Connection` values seen (`keep-alive`, `close`, none): read-only, shared, bounded. */
const tokenCache = new Map<string, ReadonlySet<string>>();
const TOKEN_CACHE_MAX = 64;
const TOKEN_CACHE_KEY_MAX = 64;

/** Header names the `Connection` header lists: also hop-by-hop for this message (RFC 9110 §7.6.1). */
export function connectionTokens(headers: IncomingHttpHeaders): ReadonlySet<string> {
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
 * `Grip-*` header in any spelling (a client must never forge an instruction,
 * signature or cursor, docs/protocol.md §1.1), every forwarding header the
 * proxy sets itself (§1.2), and the hop-by-hop ones, except
 * `Transfer-Encoding`, which frames the body being piped on. Returns how many
 * proxy-owned headers were removed.
 */
export function stripRequestHeaders(headers: IncomingHttpHeaders): number {
  const named = connectionTokens(headers);
  let owned = 0;
  for (const name of Object.keys(headers)) {
    if (isProxyOwnedRequestHeader(name)) {
      delete headers[name];
      owned++;
    } else if ((HOP_BY_HOP.has(name) && name !== 'transfer-encoding') || named.has(name)) {
      delete headers[name];
    }
  }
  return owned;
}
