/**
 * Which Host headers the client port serves when a base domain is configured:
 * the base domain itself and any subdomain of it (the page's host and the
 * shard hosts `c1.<base>`, `c2.<base>`, ...). Pure.
 */

/** The host name of a Host header, lower-cased, without port or IPv6 brackets. */
export function hostName(hostHeader: string | undefined): string {
  if (!hostHeader) return '';
  const host = hostHeader.trim().toLowerCase();
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') === -1 ? undefined : host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return (colon === -1 ? host : host.slice(0, colon)).replace(/\.$/, '');
}

/** True when no base domain is set, or the Host is the base domain or a subdomain of it. */
export function isAcceptedHost(hostHeader: string | undefined, baseDomain: string | undefined): boolean {
  if (baseDomain === undefined) return true;
  const name = hostName(hostHeader);
  return name === baseDomain || name.endsWith(`.${baseDomain}`);
}
