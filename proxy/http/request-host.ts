/**
 * The host a request names, checked before anything else reads the request
 * (docs/protocol.md §1.6–§1.7, RFC 9112 §3.2): exactly one `Host` header
 * (none is allowed only in HTTP/1.0), strict host syntax, and a host the port
 * serves. An absolute-form target (`GET http://host/path`) names the host
 * instead of `Host` (RFC 9112 §3.2.2): its authority is checked the same way
 * and, once accepted, the request is rewritten in place to origin form with
 * that authority as `Host`, so everything downstream (forwarding, re-asks,
 * leases, the bridge page) sees one consistent request.
 */
import type { ClientRequest } from './client-message.js';
import type { ProxyErrorCode } from '../errors.js';
import { parseHost, type ParsedHost } from './host-syntax.js';

export type HostCheck =
  | { ok: true }
  | { ok: false; code: Extract<ProxyErrorCode, 'PROXY_ERR_BAD_REQUEST' | 'PROXY_ERR_BAD_HOST' | 'PROXY_ERR_MISDIRECTED'>; message: string };

export interface HostCheckOptions {
  /** True when the port serves this host (http/host-filter.ts). */
  serves: (host: ParsedHost) => boolean;
  /** The message for a host it does not serve, naming the setting that would serve it. */
  notServed: (name: string) => string;
  /**
   * `Host` values already parsed and found served (`serves` depends on the options alone): a client sends the
   * same one poll after poll, so it is parsed once, not per request (issue 15). Bounded by `ACCEPTED_MAX`.
   */
  accepted?: Set<string>;
}

const ACCEPTED_MAX = 256;

const ABSOLUTE_FORM = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/;

/** How many `Host` lines the request had: Node keeps only the first in `req.headers`. */
function hostLines(req: ClientRequest): number {
  let count = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.length === 4 && req.rawHeaders[i]!.toLowerCase() === 'host') count++;
  }
  return count;
}

function bad(message: string): HostCheck {
  return { ok: false, code: 'PROXY_ERR_BAD_HOST', message };
}

/** Checks `req` and, when accepted, rewrites an absolute-form target to origin form in place. */
export function checkRequestHost(req: ClientRequest, { serves, notServed, accepted }: HostCheckOptions): HostCheck {
  const lines = hostLines(req);
  if (lines > 1) return bad('the request has more than one Host header');
  const hostHeader = req.headers.host;
  const url = req.url ?? '';
  // The common case, an origin-form target with a Host seen before: nothing to parse or rewrite.
  if (accepted !== undefined && hostHeader !== undefined && url.startsWith('/') && accepted.has(hostHeader)) return ACCEPTED;
  let authority: string | undefined = hostHeader;
  let originForm: string | undefined;

  if (!url.startsWith('/') && !(url === '*' && req.method === 'OPTIONS')) {
    const absolute = ABSOLUTE_FORM.exec(url);
    if (absolute === null) return { ok: false, code: 'PROXY_ERR_BAD_REQUEST', message: 'the request target is neither /path nor http://host/path' };
    const [, scheme, target, rest] = absolute as unknown as [string, string, string, string];
    if (!/^https?$/i.test(scheme)) return { ok: false, code: 'PROXY_ERR_BAD_REQUEST', message: `the request target's scheme ${scheme.slice(0, 16)} is not http` };
    if (target.includes('@')) return bad("the request target's authority has userinfo");
    authority = target;
    originForm = rest.startsWith('/') ? rest : `/${rest}`;
  }

  if (authority === undefined) {
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused; an HTTP/1.0 one names no host at all.
    if (req.httpVersion === '1.0') return { ok: true };
    return { ok: false, code: 'PROXY_ERR_BAD_REQUEST', message: 'an HTTP/1.1 request needs a Host header' };
  }
  const parsed = parseHost(authority);
  if ('error' in parsed) {
    const what = originForm === undefined ? 'the Host' : "the request target's authority";
    return bad(`${what} ${JSON.stringify(authority.slice(0, 100))} is not a valid host[:port]: ${parsed.error}`);
  }
  if (!serves(parsed.host)) return { ok: false, code: 'PROXY_ERR_MISDIRECTED', message: notServed(parsed.host.name) };

  if (originForm !== undefined) {
    req.url = originForm;
    req.headers.host = authority;
  } else if (accepted !== undefined && accepted.size < ACCEPTED_MAX) {
    accepted.add(authority);
  }
  return ACCEPTED;
}

const ACCEPTED: HostCheck = { ok: true };
