/**
 * Tells requests that came through the proxy from the rest (docs/protocol.md §2).
 * Only those may be answered with a hold instruction: anyone else would get
 * the raw instruction instead of a parked request.
 */
import type { RequestHandler } from 'express';
import { GripSigVerifier } from '../../protocol/grip-sig.js';
import { GRIP_SIG } from '../../protocol/headers.js';
import { AppError } from '../errors.js';

/**
 * No `Grip-Sig`: not via the proxy. A valid one: via the proxy. An invalid one
 * is refused with 401 rather than treated as absent: it means the proxy and the
 * app disagree on the secret, which should fail loudly, not degrade to polling.
 */
export function gripSig(secret: string): RequestHandler {
  const verifier = new GripSigVerifier(secret);
  return async (req, _res, next) => {
    const token = req.headers[GRIP_SIG];
    if (token === undefined) {
      req.viaProxy = false;
      return next();
    }
    if (typeof token !== 'string' || !(await verifier.verify(token))) {
      throw new AppError('APP_ERR_BAD_GRIP_SIG', 'Grip-Sig is not a valid signature for this app');
    }
    req.viaProxy = true;
    next();
  };
}

/**
 * With the `requireGripSig` option: every request this guards must have come
 * through the proxy (run after `gripSig`). For deployments where the app's port
 * could be reached directly, so nobody can bypass the proxy's limits.
 */
export const requireGripSig: RequestHandler = (req, _res, next) => {
  if (req.viaProxy !== true) {
    throw new AppError('APP_ERR_NO_GRIP_SIG', 'this app only answers requests that come through its proxy (Grip-Sig required)');
  }
  next();
};
