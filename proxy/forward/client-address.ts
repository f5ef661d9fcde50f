/**
 * Who a client is, for the per-address parking cap (holds/hold-registry.ts) and for
 * the app (the `X-Forwarded-For` the proxy sends, docs/protocol.md §1): the
 * socket's peer, or, with `trustForwardedFor`, the right-most `X-Forwarded-For`
 * entry, which the load balancer in front of the proxy wrote. Any entry to its
 * left came from the client and proves nothing.
 */
import type { ClientRequest } from '../http/client-message.js';
import { lastForwardedFor, normalizeAddress } from '../../common/net-address.js';

export function clientAddressOf(req: ClientRequest, trustForwardedFor: boolean): string {
  const peer = normalizeAddress(req.socket.remoteAddress ?? '');
  if (!trustForwardedFor) return peer;
  return lastForwardedFor(req.headers['x-forwarded-for']) ?? peer;
}
