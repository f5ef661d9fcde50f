/**
 * Cross-site request forgery guard for the state-changing API methods (POST,
 * PUT, PATCH, DELETE under /api; docs/chat-api.md, "CSRF").
 *
 * The `sid` cookie is `SameSite=Lax`, so modern browsers already leave it off
 * cross-site POSTs. This adds the check browsers make possible everywhere: a
 * browser sends `Origin` on every cross-origin POST (and `Referer` unless told
 * not to), and a page cannot forge either. So when `Origin` is present (else
 * `Referer`), its host must be the request's `Host`, or, with a base domain, the
 * base domain or one of its subdomains (the shard hosts). `Origin: null`
 * (sandboxed frames, some redirects) names no host and is refused.
 *
 * A request with neither header is allowed: curl, tests and other non-browser
 * clients send neither, and so do old browsers, which SameSite does not cover
 * either; a browser new enough to attach a cross-site cookie to a POST also
 * sends `Origin`.
 */
import type { RequestHandler } from 'express';
import { AppError } from '../errors.js';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface CsrfOptions {
  /** The parent domain of the page and its shard hosts, if sharding is on. */
  baseDomain: string | undefined;
}

/** The `host[:port]` of an absolute URL, lower-cased with the scheme's default port dropped; null if it has none. */
function hostOfUrl(text: string): { host: string; hostname: string; protocol: string } | null {
  try {
    const url = new URL(text);
    if (url.host === '') return null;
    return { host: url.host.toLowerCase(), hostname: url.hostname.toLowerCase(), protocol: url.protocol };
  } catch {
    return null;
  }
}

/** Why `source` (an Origin or Referer value) is not this site, or null when it is. */
function crossSiteReason(source: string, hostHeader: string | undefined, baseDomain: string | undefined): string | null {
  const from = hostOfUrl(source);
  if (from === null) return 'names no host';
  if (baseDomain !== undefined && (from.hostname === baseDomain || from.hostname.endsWith(`.${baseDomain}`))) return null;
  // Read the Host header with the source's scheme, so `chat.test:443` and `https://chat.test` agree.
  const own = hostHeader === undefined ? null : hostOfUrl(`${from.protocol}//${hostHeader}`);
  if (own !== null && own.host === from.host) return null;
  return `is not ${hostHeader ?? 'this host'}`;
}

export function csrfGuard(options: CsrfOptions): RequestHandler {
  return (req, _res, next) => {
    if (!STATE_CHANGING.has(req.method)) return next();
    const origin = req.headers.origin;
    const referer = req.headers.referer;
    const [name, source] = origin !== undefined ? ['Origin', origin] : ['Referer', referer];
    if (source === undefined) return next();
    const reason = crossSiteReason(source, req.headers.host, options.baseDomain);
    if (reason !== null) {
      throw new AppError('APP_ERR_CSRF', `cross-site request refused: the ${name} header ${reason}`);
    }
    next();
  };
}
