/**
 * Identifier formats shared by proxy, app and tests.
 */

/** nanoid's default alphabet and length: 21 URL-safe characters, ~126 bits of randomness. */
export const CONNECTION_ID_PATTERN = /^[A-Za-z0-9_-]{21}$/;

/** Channel names: 1-128 characters from a header-safe set (no `;`, `,`, `=`, quotes or whitespace). */
export const CHANNEL_NAME_PATTERN = /^[A-Za-z0-9_.:@/+!#$%&*^|~-]{1,128}$/;

/**
 * Item ids and prev-ids (cursors): 1-128 characters from the same set plus `=`, so base64 ids work as in
 * Pushpin. `=` is safe in `prev-id=ID` / `last-id=ID`: parameters split at their first `=`.
 */
export const ITEM_ID_PATTERN = /^[A-Za-z0-9_.:@/+!#$%&*^|~=-]{1,128}$/;

export function isConnectionId(value: unknown): value is string {
  return typeof value === 'string' && CONNECTION_ID_PATTERN.test(value);
}

export function isChannelName(value: unknown): value is string {
  return typeof value === 'string' && CHANNEL_NAME_PATTERN.test(value);
}

export function isItemId(value: unknown): value is string {
  return typeof value === 'string' && ITEM_ID_PATTERN.test(value);
}
