/**
 * Grip-Sig: an HS256 JWT signed with the shared secret, added by the proxy to
 * every request it forwards, so the app can tell a request came through the
 * proxy (and may therefore be held). Claims follow Pushpin: `iss` and `exp`.
 */
import { SignJWT, jwtVerify } from 'jose';

export const GRIP_SIG_ISSUER = 'comet-chat';
/** Lifetime of a signature, seconds (Pushpin uses one hour). */
export const GRIP_SIG_LIFETIME_S = 3600;

function keyOf(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/** Signs a Grip-Sig token that expires `lifetimeS` seconds after `nowMs`. */
export async function signGripSig(secret: string, nowMs: number = Date.now(), lifetimeS = GRIP_SIG_LIFETIME_S): Promise<string> {
  const nowS = Math.floor(nowMs / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(GRIP_SIG_ISSUER)
    .setIssuedAt(nowS)
    .setExpirationTime(nowS + lifetimeS)
    .sign(keyOf(secret));
}

/**
 * True when `token` is an unexpired HS256 JWT signed with `secret`. Never throws.
 * `exp` is required: jose accepts a token without one, which would never expire.
 */
export async function verifyGripSig(token: string | undefined, secret: string): Promise<boolean> {
  if (!token || token.length > 4096) return false;
  try {
    await jwtVerify(token, keyOf(secret), { algorithms: ['HS256'], requiredClaims: ['exp'] });
    return true;
  } catch {
    return false;
  }
}

/**
 * `verifyGripSig` with memory: a token that verified is trusted again until its
 * `exp` without another HMAC. The proxy signs one token per half hour, so the
 * app would otherwise verify the same token on every request (it was ~8% of
 * the app's CPU under load, WebCrypto's per-call setup included). Only valid
 * tokens are kept, at most `maxTokens`, so garbage cannot grow the cache.
 */
export class GripSigVerifier {
  /** token → expiry, ms since the epoch; insertion order is age. */
  private readonly valid = new Map<string, number>();

  constructor(
    private readonly secret: string,
    private readonly now: () => number = Date.now,
    private readonly maxTokens = 16,
  ) {}

  async verify(token: string | undefined): Promise<boolean> {
    if (!token || token.length > 4096) return false;
    const expiresAt = this.valid.get(token);
    if (expiresAt !== undefined) {
      if (this.now() < expiresAt) return true;
      this.valid.delete(token);
    }
    let exp: number | undefined;
    try {
      const { payload } = await jwtVerify(token, keyOf(this.secret), { algorithms: ['HS256'], requiredClaims: ['exp'], currentDate: new Date(this.now()) });
      exp = payload.exp;
    } catch {
      return false;
    }
    if (typeof exp === 'number') {
      if (this.valid.size >= this.maxTokens) this.valid.delete(this.valid.keys().next().value!);
      this.valid.set(token, exp * 1000);
    }
    return true;
  }
}

/**
 * Keeps one signed token and re-signs it when less than half its life is left,
 * so the proxy does not pay for an HMAC per forwarded request.
 */
export class GripSigSigner {
  private token = '';
  private refreshAtMs = 0;
  private pending: Promise<string> | null = null;

  constructor(
    private readonly secret: string,
    private readonly now: () => number = Date.now,
    private readonly lifetimeS = GRIP_SIG_LIFETIME_S,
  ) {}

  /** Current token, signing a new one first if needed. */
  async get(): Promise<string> {
    if (this.token && this.now() < this.refreshAtMs) return this.token;
    if (!this.pending) {
      const signedAt = this.now();
      this.pending = signGripSig(this.secret, signedAt, this.lifetimeS).then((t) => {
        this.token = t;
        this.refreshAtMs = signedAt + (this.lifetimeS * 1000) / 2;
        this.pending = null;
        return t;
      }, (err: unknown) => {
        this.pending = null;
        throw err;
      });
    }
    return this.pending;
  }

  /** The cached token if it is still fresh, else null (callers then await `get()`). */
  peek(): string | null {
    return this.token && this.now() < this.refreshAtMs ? this.token : null;
  }
}
