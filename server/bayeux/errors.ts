/**
 * Bayeux message-level errors (Bayeux 1.0 §3.4 "error": `code:args:message`).
 * A refused message gets `successful: false` with this string, plus our stable
 * code in `ext["comet-chat"].code` so clients and tests need not parse prose.
 * Envelope errors (not JSON, not an array, too large) are plain HTTP
 * `{code, message}` answers with `AppError` codes instead.
 */

/** Code -> the Bayeux error number sent in `error`. */
export const BAYEUX_ERROR_STATUS = {
  /** A message lacks a field its channel needs, or has one of the wrong type. */
  BAYEUX_ERR_BAD_MESSAGE: 400,
  /** A `/meta/...` channel Bayeux does not define. */
  BAYEUX_ERR_UNKNOWN_META_CHANNEL: 400,
  /** `supportedConnectionTypes` without a transport served here, or a connect whose `connectionType` is not its request's transport. */
  BAYEUX_ERR_CONNECTION_TYPE: 400,
  /** The clientId is unknown or expired: handshake again (`402::Unknown client`). */
  BAYEUX_ERR_UNKNOWN_CLIENT: 402,
  /** Handshake without a chat identity (no `ext["comet-chat"].nick`, no session cookie). */
  BAYEUX_ERR_HANDSHAKE_DENIED: 403,
  /** A channel pattern other than `/chat/*` and `/chat/**` (`/**`, `/chat/a/*`, `/meta/*`), or any pattern as a publish channel. */
  BAYEUX_ERR_WILDCARD: 403,
  /** A client already subscribes to `BAYEUX_MAX_SUBSCRIPTIONS` rooms. */
  BAYEUX_ERR_TOO_MANY_SUBSCRIPTIONS: 403,
  /** A channel that is neither `/meta/...` nor `/chat/<room>`. */
  BAYEUX_ERR_UNKNOWN_CHANNEL: 404,
} as const;

export type BayeuxErrorCode = keyof typeof BAYEUX_ERROR_STATUS;

export class BayeuxError extends Error {
  override name = 'BayeuxError';
  readonly status: number;

  constructor(
    readonly code: BayeuxErrorCode,
    message: string,
    /** The `args` part: the field or channel at fault. */
    readonly args: string = '',
  ) {
    super(message);
    this.status = BAYEUX_ERROR_STATUS[code];
  }
}

/** CometD's exact string for an unknown client, which its clients recognise. */
export function unknownClient(): BayeuxError {
  return new BayeuxError('BAYEUX_ERR_UNKNOWN_CLIENT', 'Unknown client');
}

/** `NNN:args:message`; `:` in args would end them early, so it is dropped there. */
export function formatBayeuxError(status: number, args: string, message: string): string {
  return `${status}:${args.replace(/:/g, '')}:${message}`;
}
