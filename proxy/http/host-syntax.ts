/**
 * Parses a `Host` value (or the authority of an absolute-form request target)
 * strictly, as RFC 9112 §3.2 asks: `uri-host [":" port]` of RFC 3986, where
 * uri-host is an IPv6 literal in brackets, a dotted-decimal IPv4 address or a
 * reg-name. The reg-name is limited to unreserved characters (letters, digits,
 * `-._~`): percent-escapes and sub-delimiters (`!$&'()*+,;=`) are valid RFC
 * 3986 but no DNS name has them, and intermediaries disagree on what they mean
 * (`a,b`, `a%2eb`). Userinfo (`a@b`), paths, fragments, zone ids and IPvFuture
 * are refused. Pure.
 */
import { isIPv6 } from 'node:net';

export interface ParsedHost {
  /** Lower-case, without a trailing dot; an IPv6 address without brackets, in canonical (compressed) form. */
  name: string;
  kind: 'reg-name' | 'ipv4' | 'ipv6';
  port: number | undefined;
}

export type HostSyntax = { host: ParsedHost } | { error: string };

const REG_NAME = /^[A-Za-z0-9._~-]+$/;
/** RFC 3986 dec-octet: 0-255 without leading zeros. */
const DEC_OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])';
const IPV4 = new RegExp(`^${DEC_OCTET}(?:\\.${DEC_OCTET}){3}$`);
/** Longest DNS name (RFC 1035), not counting a trailing dot. */
const MAX_NAME_LENGTH = 253;

/** `[::1]` -> `::1` in the canonical form the WHATWG URL parser gives, so every spelling compares equal. */
export function canonicalIPv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

function parsePort(text: string | undefined): number | undefined | null {
  if (text === undefined) return undefined;
  // An empty port is RFC 3986 but says nothing; more than 5 digits is never a port.
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port <= 65_535 ? port : null;
}

export function parseHost(value: string): HostSyntax {
  const text = value.trim();
  if (text === '') return { error: 'the Host is empty' };
  let hostText: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return { error: 'an IPv6 address is not closed with ]' };
    hostText = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return { error: 'only a :port may follow an IPv6 address' };
    portText = rest === '' ? undefined : rest.slice(1);
    // isIPv6 accepts zone ids (`fe80::1%eth0`); a Host never carries one.
    if (hostText.includes('%') || !isIPv6(hostText)) return { error: 'the brackets do not hold an IPv6 address' };
  } else {
    const colon = text.indexOf(':');
    hostText = colon === -1 ? text : text.slice(0, colon);
    portText = colon === -1 ? undefined : text.slice(colon + 1);
    if (!REG_NAME.test(hostText)) return { error: 'the name is not a host name or IPv4 address' };
  }
  const port = parsePort(portText);
  if (port === null) return { error: 'the port is not a number 0-65535' };
  if (text.startsWith('[')) return { host: { name: canonicalIPv6(hostText), kind: 'ipv6', port } };
  if (IPV4.test(hostText)) return { host: { name: hostText, kind: 'ipv4', port } };
  const name = hostText.toLowerCase().replace(/\.$/, '');
  if (name === '' || name.length > MAX_NAME_LENGTH) return { error: `the name is empty or longer than ${MAX_NAME_LENGTH} characters` };
  return { host: { name, kind: 'reg-name', port } };
}
