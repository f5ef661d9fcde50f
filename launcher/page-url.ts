/**
 * The address `npm start` prints for the chat page: one a browser on this
 * machine can open and sign in on, in every mode.
 *
 * - With BASE_DOMAIN the page must be opened under that name: the session
 *   cookie is scoped to it (COOKIE_DOMAIN, default BASE_DOMAIN), so a browser
 *   on 127.0.0.1 drops it and cannot sign in, and shard hosts c1..cN are its
 *   subdomains. The name must resolve to the proxy (a hosts entry, README).
 * - Without it, the listen address; a wildcard listen (0.0.0.0, ::) becomes
 *   loopback, which the proxy always serves.
 */
import { hostForUrl } from '../common/launcher-ipc.js';

export interface PageUrlInput {
  /** The proxy's client listen address and port, as it reported them. */
  clientHost: string;
  clientPort: number;
  /** BASE_DOMAIN, if set. */
  baseDomain: string | undefined;
}

export function pageUrl(input: PageUrlInput): string {
  const host = input.baseDomain ? input.baseDomain : hostForUrl(input.clientHost);
  return `http://${host}:${input.clientPort}/`;
}
