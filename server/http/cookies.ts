/**
 * The `sid` cookie: parsing the Cookie header (RFC 6265 §5.4, leniently) and
 * the attributes the cookie is set with.
 */
import type { CookieOptions } from 'express';

export const SESSION_COOKIE = 'sid';

/** Cookie header -> name/value map; the first occurrence of a name wins, as browsers send the most specific first. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const name = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (name === '' || cookies.has(name)) continue;
    try {
      cookies.set(name, decodeURIComponent(value));
    } catch {
      // A malformed escape is someone else's cookie; ignore it.
    }
  }
  return cookies;
}

/**
 * `HttpOnly; SameSite=Lax; Path=/` (docs/chat-api.md), `Secure` when the site is served over HTTPS, and
 * `Domain=` when shard hosts under a parent domain must share the session.
 */
export function sessionCookieOptions(secure: boolean, domain?: string): CookieOptions {
  const options: CookieOptions = { httpOnly: true, sameSite: 'lax', path: '/', secure };
  if (domain !== undefined) options.domain = domain;
  return options;
}
