/**
 * Client and listener addresses, shared by the proxy and the app: which hosts
 * are loopback (the control API and the rate-limit exemption depend on it), how
 * an address is written (IPv4-mapped IPv6 folded to IPv4, so `::ffff:10.0.0.1`
 * and `10.0.0.1` are one client), and which entry of `X-Forwarded-For` a trusted
 * peer added. Pure.
 */
import { isIP, isIPv4 } from 'node:net';

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** `::ffff:a.b.c.d` -> `a.b.c.d`, lower-cased, IPv6 brackets removed; anything else unchanged. */
export function normalizeAddress(address: string): string {
  let text = address.trim().toLowerCase();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const mapped = MAPPED_IPV4.exec(text);
  return mapped ? mapped[1]! : text;
}

/**
 * True for a host that only this machine can reach: `localhost`, 127.0.0.0/8,
 * `::1` (any spelling), and their IPv4-mapped forms. `0.0.0.0` and `::` mean
 * "every interface" and are not loopback.
 */
export function isLoopbackHost(host: string): boolean {
  const text = normalizeAddress(host);
  if (text === 'localhost') return true;
  if (isIPv4(text)) return text.split('.')[0] === '127';
  if (isIP(text) === 6) return expandIPv6(text) === '0000:0000:0000:0000:0000:0000:0000:0001';
  return false;
}

/** The eight groups of an IPv6 address, zero-padded (only called with a valid address). */
function expandIPv6(address: string): string {
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  // An embedded IPv4 tail (`::ffff:1.2.3.4` was folded already; `::1.2.3.4` is deprecated) counts as two groups.
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

/**
 * The last (right-most) entry of an `X-Forwarded-For` value: the address the
 * nearest proxy in front saw, the only one a server that trusts that proxy may
 * believe (the entries to its left were written by whoever sent the request).
 * Undefined when the header is missing or that entry is not an IP address.
 */
export function lastForwardedFor(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  const last = entries.at(-1);
  if (last === undefined) return undefined;
  const address = normalizeAddress(last);
  return isIP(address) === 0 ? undefined : address;
}
