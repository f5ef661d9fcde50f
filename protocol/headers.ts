/**
 * Header names of the hold protocol (docs/protocol.md). Lower-case because Node
 * lower-cases incoming header names; compare case-insensitively everywhere.
 */

/** App -> proxy: hold mode. Only `response` (long-poll) is supported. */
export const GRIP_HOLD = 'grip-hold';
/** App -> proxy: a channel to subscribe the held request to, `name; prev-id=ID`. Repeatable, comma-separated. */
export const GRIP_CHANNEL = 'grip-channel';
/** App -> proxy: hold timeout in seconds (GRIP: integer; we also accept decimals). */
export const GRIP_TIMEOUT = 'grip-timeout';
/** App -> proxy: status code (and optional reason) of the timeout response, `304` or `404 Not Here`. */
export const GRIP_STATUS = 'grip-status';
/** App -> proxy (extension): the connection ID the held request is parked under. */
export const GRIP_CONNECTION_ID = 'grip-connection-id';
/** App -> proxy (Pushpin): the held response keeps only the headers named here (docs/protocol.md §3.1). */
export const GRIP_EXPOSE_HEADERS = 'grip-expose-headers';
/** App -> proxy (Pushpin): the hold's meta, `key=value, ...`, read by channel filters such as `skip-self`. */
export const GRIP_SET_META = 'grip-set-meta';
/** App -> proxy (Pushpin): `<URL>; rel=next; timeout=N`; validated, never followed on a response hold. */
export const GRIP_LINK = 'grip-link';
/** Proxy -> app: HS256 JWT signed with the shared secret, proving the request came through the proxy. */
export const GRIP_SIG = 'grip-sig';
/** Proxy -> app on a re-ask: the proxy's last known id per channel, `name; last-id=ID`. */
export const GRIP_LAST = 'grip-last';
/** Every header with this prefix belongs to the protocol: stripped from clients' requests and from responses to clients. */
export const GRIP_PREFIX = 'grip-';

/** App -> client (a plain response header, not stripped): the connection ID the app issued to this client. */
export const COMET_CONNECTION_ID = 'comet-connection-id';
/** Proxy -> client: present (with the reason) on a resync answer. */
export const COMET_RESYNC = 'comet-resync';

/** Is this header name part of the hold protocol (and therefore never forwarded across the proxy)? */
export function isGripHeader(name: string): boolean {
  return name.length >= 5 && name.slice(0, 5).toLowerCase() === GRIP_PREFIX;
}
