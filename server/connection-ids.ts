/**
 * Self-certifying connection IDs (docs/protocol.md §5): the ID carries the
 * session it belongs to and a MAC over it, so issuing one writes nothing and
 * checking ownership reads nothing. A first poll used to insert a row per ID
 * (one SQLite write transaction each, the app's limit in a connection storm).
 *
 * Layout, 21 characters of the base64url alphabet (protocol/ids.ts's format):
 *
 *   SSSSSS RRRRRRR TTTTTTTT
 *   |      |       `- tag: the first 48 bits of HMAC-SHA256(key, "SSSSSSRRRRRRR"), base64url
 *   |      `- 42 random bits
 *   `- the session id, 36 bits, big-endian base64url digits
 *
 * The session id is no secret (events carry it as `user.id`). Sessions are
 * never deleted, so an id is never reused by another session. Forging an ID
 * for a session takes ~2^47 online guesses; randomness only has to keep one
 * session's IDs apart. IDs issued before this format (random nanoids, and the
 * Bayeux handshake's) do not verify here and are still looked up as rows.
 */
import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import { isConnectionId } from '../protocol/ids.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DIGIT = new Map([...ALPHABET].map((c, i) => [c, i]));
const SESSION_CHARS = 6;
const RANDOM_CHARS = 7;
const SIGNED_CHARS = SESSION_CHARS + RANDOM_CHARS;
/** 2^42: the random part's range, 7 base64url digits. */
const RANDOM_RANGE = 64 ** RANDOM_CHARS;
/** 48 bits of tag = 6 bytes = 8 base64url characters. */
const TAG_BYTES = 6;

/** The largest session id a signed ID can carry (64^6 - 1); larger sessions get stored IDs. */
export const MAX_SIGNED_SESSION_ID = 64 ** SESSION_CHARS - 1;

export class ConnectionIds {
  constructor(private readonly key: Buffer) {
    if (key.length < 32) throw new Error('the connection-ID key must have at least 32 bytes');
  }

  /** A new ID bound to the session; null when the session id does not fit the format. */
  issue(sessionId: number): string | null {
    if (!Number.isSafeInteger(sessionId) || sessionId < 0 || sessionId > MAX_SIGNED_SESSION_ID) return null;
    // randomInt draws from Node's pooled CSPRNG cache (6 KB per refill): 0.26 µs against randomBytes(6)'s 5.4 µs,
    // which allocates and calls into OpenSSL per ID (issue 15: the storm of first polls). Uniform over 2^42.
    const signed = digits(sessionId, SESSION_CHARS) + digits(randomInt(RANDOM_RANGE), RANDOM_CHARS);
    return signed + this.tag(signed);
  }

  /**
   * The session a well-formed ID was issued to by this key, or null when its
   * tag does not match: an ID from before this format, or an altered or made-up one.
   */
  ownerOf(id: string): number | null {
    if (!isConnectionId(id)) return null;
    const signed = id.slice(0, SIGNED_CHARS);
    const expected = Buffer.from(this.tag(signed));
    const given = Buffer.from(id.slice(SIGNED_CHARS));
    if (!timingSafeEqual(expected, given)) return null;
    let sessionId = 0;
    for (let i = 0; i < SESSION_CHARS; i++) sessionId = sessionId * 64 + DIGIT.get(id[i]!)!;
    return sessionId;
  }

  private tag(signed: string): string {
    return createHmac('sha256', this.key).update(signed).digest().subarray(0, TAG_BYTES).toString('base64url');
  }
}

/** `n` (0 <= n < 64^count) as `count` big-endian base64url digits. */
function digits(n: number, count: number): string {
  let out = '';
  for (let i = 0; i < count; i++, n = Math.floor(n / 64)) out = ALPHABET[n % 64] + out;
  return out;
}
