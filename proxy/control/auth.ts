/**
 * Control API authentication (docs/protocol.md §7): `Authorization: Bearer <control secret>`, or `Bearer <JWT>`
 * HS256-signed with the control secret, as GRIP publisher libraries send it. The control secret is not the
 * Grip-Sig key: a Grip-Sig the proxy gave an app (which the app, its logs or whoever compromised it can read) is
 * signed with another key and never opens this API. A JWT is checked strictly, so a leaked one does little: its
 * `iss` must be the configured control issuer, its `aud` (if it has one) the control audience, and its `exp`
 * present and at most `maxLifetimeMs` ahead; `nbf` and `iat` are honoured. Neither a secret nor a token is ever logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { jwtVerify, type JWTPayload } from 'jose';

const BEARER = /^Bearer +([^\s]+) *$/i;
/** Longer tokens are refused unread: a JWT with our claims is a few hundred characters. */
const MAX_TOKEN_CHARS = 4096;
/** Clocks of publisher and proxy may disagree this much, seconds (exp, nbf, iat, and the lifetime cap). */
export const CONTROL_TOKEN_CLOCK_SKEW_S = 60;

export interface ControlAuthOptions {
  /** The control secret: the Bearer token itself, and the HMAC key of control JWTs. */
  secret: string;
  /** Required `iss` of a control JWT. */
  issuer: string;
  /** A control JWT's `aud`, when it has one, must be (or list) this. */
  audience: string;
  /** Longest a control JWT may still be valid for, ms: `exp` at most this far ahead (and `exp - iat` at most this). */
  maxLifetimeMs: number;
  /** Wall-clock time, ms since the epoch (JWT claims are epoch seconds). */
  now: () => number;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Returns a check of an `Authorization` header value: true for the control secret or a valid control JWT. */
export function createControlAuth(options: ControlAuthOptions): (authorization: string | undefined) => Promise<boolean> {
  // timingSafeEqual needs equal lengths; comparing digests hides the secret's length too.
  const secretDigest = sha256(options.secret);
  const key = new TextEncoder().encode(options.secret);
  return async (authorization) => {
    const token = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
    if (token === undefined || token.length > MAX_TOKEN_CHARS) return false;
    if (timingSafeEqual(sha256(token), secretDigest)) return true;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        issuer: options.issuer,
        requiredClaims: ['iss', 'exp'],
        currentDate: new Date(options.now()),
        clockTolerance: CONTROL_TOKEN_CLOCK_SKEW_S,
      }));
    } catch {
      return false;
    }
    return claimsFit(payload, options);
  };
}

/** What jose leaves to us: the optional audience, and how far ahead `exp` (and `iat`) may be. */
function claimsFit(payload: JWTPayload, options: ControlAuthOptions): boolean {
  if (payload.aud !== undefined) {
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!audiences.includes(options.audience)) return false;
  }
  const nowS = options.now() / 1000;
  const maxLifetimeS = options.maxLifetimeMs / 1000;
  // A far-future exp would make a leaked token a lasting credential.
  if (payload.exp! > nowS + maxLifetimeS + CONTROL_TOKEN_CLOCK_SKEW_S) return false;
  if (payload.iat !== undefined) {
    if (payload.iat > nowS + CONTROL_TOKEN_CLOCK_SKEW_S) return false;
    if (payload.exp! - payload.iat > maxLifetimeS) return false;
  }
  return true;
}
