/**
 * Control API authentication (docs/protocol.md §7): `Authorization: Bearer
 * <secret>`, or `Bearer <JWT>` HS256-signed with the secret and unexpired (what
 * GRIP publisher libraries send). Neither the secret nor a token is ever logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { verifyGripSig } from '../../protocol/grip-sig.js';

const BEARER = /^Bearer +([^\s]+) *$/i;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Returns a check of an `Authorization` header value: true for the secret or a valid JWT signed with it. */
export function createControlAuth(secret: string): (authorization: string | undefined) => Promise<boolean> {
  // timingSafeEqual needs equal lengths; comparing digests hides the secret's length too.
  const secretDigest = sha256(secret);
  return async (authorization) => {
    const token = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
    if (token === undefined) return false;
    if (timingSafeEqual(sha256(token), secretDigest)) return true;
    return verifyGripSig(token, secret);
  };
}
