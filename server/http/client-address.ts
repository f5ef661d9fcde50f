/**
 * The client's address as the app sees it, for the session-creation rate limit:
 * the `X-Forwarded-For` the proxy wrote (docs/protocol.md §1.2: exactly the one
 * address the proxy judged) when the request carries a valid `Grip-Sig`, else the
 * socket's peer. Without the signature the header could come from anyone.
 */
import type { Request } from 'express';
import { isLoopbackHost, lastForwardedFor, normalizeAddress } from '../../common/net-address.js';

export function clientAddressOf(req: Request): string {
  const peer = normalizeAddress(req.socket.remoteAddress ?? '');
  if (req.viaProxy !== true) return peer;
  return lastForwardedFor(req.headers['x-forwarded-for']) ?? peer;
}

/** True when the client is on this machine (loopback address). */
export function isLoopbackClient(req: Request): boolean {
  return isLoopbackHost(clientAddressOf(req));
}
