/**
 * Which hosts a port serves (docs/protocol.md §1.7). A page that rebinds its
 * own DNS name to this machine (DNS rebinding) reaches us with that name in
 * `Host`, so a port must serve only the names it is configured for:
 *
 * - loopback names, always: `localhost`, `*.localhost` (RFC 6761), 127.0.0.0/8
 *   and `[::1]`. Only a client on this machine, or one that chose to, sends
 *   them; a rebinding page carries its own name.
 * - entries (`allowedHosts`): `name` (exactly), `*.suffix` (any subdomain of
 *   suffix, not suffix itself), an IPv4 address, `[IPv6]`, or `*` (every host).
 * - with `ipAddresses` (the control port), every IP address: a rebinding page
 *   always comes with a DNS name, so an address proves no page chose it.
 *
 * Ports are not compared: behind a port mapping or load balancer the port a
 * client names is not the one the proxy listens on. Pure.
 */
import { isIP } from 'node:net';
import { isLoopbackHost } from '../../common/net-address.js';
import { canonicalIPv6, parseHost, type ParsedHost } from './host-syntax.js';

/** Is `entry` an allowed-host entry: a name, `*.suffix`, an IPv4 address, `[IPv6]` or `*`? */
export function isHostPattern(entry: string): boolean {
  if (entry === '*') return true;
  const body = entry.startsWith('*.') ? entry.slice(2) : entry;
  if (body.includes(':') && !body.startsWith('[')) return false;
  const parsed = parseHost(body);
  if (!('host' in parsed) || parsed.host.port !== undefined || body.trim() !== body) return false;
  return !entry.startsWith('*.') || parsed.host.kind === 'reg-name';
}

/** IPv4-mapped IPv6 (`::ffff:7f00:1`, the canonical form of `::ffff:127.0.0.1`) as dotted IPv4; else undefined. */
function mappedIPv4(ipv6: string): string | undefined {
  const match = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ipv6);
  if (match === null) return undefined;
  const [high, low] = [parseInt(match[1]!, 16), parseInt(match[2]!, 16)];
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

function isLoopbackName(host: ParsedHost): boolean {
  if (host.kind === 'reg-name') return host.name === 'localhost' || host.name.endsWith('.localhost');
  if (host.kind === 'ipv6') return isLoopbackHost(mappedIPv4(host.name) ?? host.name);
  return isLoopbackHost(host.name);
}

/** Comparable form of an entry that is no pattern: lower-case name, or IPv6 canonical without brackets. */
function entryName(entry: string): string {
  return entry.startsWith('[') ? canonicalIPv6(entry.slice(1, -1)) : entry.toLowerCase().replace(/\.$/, '');
}

/**
 * A predicate over parsed Hosts: true when the host is served. Entries must satisfy `isHostPattern`
 * (options validate them).
 */
export function createHostFilter(entries: readonly string[], { ipAddresses }: { ipAddresses: boolean }): (host: ParsedHost) => boolean {
  const any = entries.includes('*');
  const exact = new Set(entries.filter((e) => e !== '*' && !e.startsWith('*.')).map(entryName));
  const suffixes = entries.filter((e) => e.startsWith('*.')).map((e) => `.${entryName(e.slice(2))}`);
  return (host) => {
    if (any || isLoopbackName(host) || exact.has(host.name)) return true;
    if (ipAddresses && host.kind !== 'reg-name') return true;
    return host.kind === 'reg-name' && suffixes.some((suffix) => host.name.endsWith(suffix));
  };
}

/**
 * The client port's entries: `allowedHosts`, the base domain and its subdomains, and the address it listens
 * on when that is one address (`0.0.0.0` and `::` listen everywhere and name nothing).
 */
export function clientHostEntries(options: { allowedHosts: readonly string[]; baseDomain: string | undefined; clientHost: string }): string[] {
  const entries = [...options.allowedHosts];
  if (options.baseDomain !== undefined) entries.push(options.baseDomain, `*.${options.baseDomain}`);
  const listen = options.clientHost;
  const version = isIP(listen);
  if (version === 4 && listen !== '0.0.0.0') entries.push(listen);
  else if (version === 6 && canonicalIPv6(listen) !== '::') entries.push(`[${listen}]`);
  else if (version === 0 && isHostPattern(listen) && !listen.startsWith('*')) entries.push(listen);
  return entries;
}
