/**
 * Re-poll leases (docs/protocol.md §13): the app's signed statement that lets
 * the proxy answer one client's next polls by itself. The app sends it in the
 * `Grip-Lease` header of a poll's answer (immediate or hold); the proxy keeps
 * it under the connection ID and, while it holds, answers that client's
 * re-polls from its channel buffer or parks them without asking the app.
 *
 * A lease is a compact JWS (RFC 7515) with HS256, signed with the *lease key*,
 * which is not the control API's secret nor the Grip-Sig key: a leaked lease
 * key lets nobody publish, and a leaked control secret forges no lease.
 * `iat`/`exp` are NumericDates with millisecond fractions, so a revocation can
 * name "issued at or before" precisely. Pure: node:crypto only, no I/O.
 */
import * as crypto from 'node:crypto';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { isChannelName, isConnectionId, isItemId } from './ids.js';

/** App -> proxy: the lease for the client whose poll this answers. */
export const GRIP_LEASE = 'grip-lease';

/** What the client's re-poll must look like for the proxy to answer it (a GET, nothing else in the query). */
export interface LeaseRequest {
  /** Exact path, e.g. `/api/poll`. */
  path: string;
  /** Query parameter carrying the connection ID, e.g. `cid`. */
  cid: string;
  /** Query parameter carrying the cursors, `key:id,key:id`, e.g. `rooms`. */
  cursors: string;
  /** Channel of a cursor key: this prefix plus the key, e.g. `room:`. */
  prefix: string;
}

/** The response of a parked re-poll that times out (and the base of every answer, docs §6). */
export interface LeaseHold {
  /** Hold timeout, seconds (clamped like `Grip-Timeout`). */
  timeout: number;
  /** Status, default 200. */
  code?: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * How several items become one answer: every item body is `prefix + part + suffix`,
 * and a batch is `prefix + part1 + sep + part2 ... + suffix`. The chat API uses
 * `{"events":[` `,` `]}`; a Bayeux endpoint would use `[` `,` `]`.
 */
export interface LeaseBatch {
  prefix: string;
  sep: string;
  suffix: string;
  /** Most items in one answer. */
  max: number;
}

export interface LeaseClaims {
  /** Connection ID the lease is for. */
  cid: string;
  /** Who the lease belongs to (the app's session handle, never a credential): revocations name it. */
  sub: string;
  /** Something only this client's requests carry: SHA-256 (base64url) of a cookie's value. */
  bind: { cookie: string; sha256: string };
  /** The channels the client may read, each with its last id in the app's snapshot (seeds the proxy's buffer). */
  ch: Array<[channel: string, lastId: string]>;
  /** Issued at and expiry, seconds since the epoch (fractions allowed). */
  iat: number;
  exp: number;
  req: LeaseRequest;
  hold: LeaseHold;
  batch: LeaseBatch;
}

export class LeaseError extends Error {
  override name = 'LeaseError';
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
/** Leases are small; a larger header is refused before any work. */
export const LEASE_MAX_BYTES = 8192;
const TOKEN_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
const PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,255}$/;

/** `crypto.hash` (Node >= 20.12): a one-shot digest without a Hash object, ~3 x faster for a cookie value. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64url') => string }).hash;

/** SHA-256 of `value` (UTF-8), base64url: the binding digest of a cookie value. */
export function bindingDigest(value: string): string {
  // Once per poll in the app and once per granted lease in the proxy (issue 15: the storm of first polls).
  if (oneShotHash !== undefined) return oneShotHash('sha256', value, 'base64url');
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

/**
 * The value of cookie `name` in a Cookie header, as the app's parser reads it
 * (first occurrence, surrounding quotes removed, percent-decoded), or undefined.
 */
export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join('; ') : header;
  for (const pair of text.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      return decodeURIComponent(value);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function mac(key: string, signingInput: string): Buffer {
  return createHmac('sha256', key).update(signingInput).digest();
}

/** Signs `claims` with the lease key. */
export function signLease(claims: LeaseClaims, key: string): string {
  const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${mac(key, input).toString('base64url')}`;
}

/**
 * Verifies the signature and the shape of every claim (the proxy obeys what a
 * lease says, so it is validated like a hold instruction). Expiry is the
 * caller's check. Throws `LeaseError` with the reason.
 */
export function verifyLease(token: string, key: string): LeaseClaims {
  if (token.length > LEASE_MAX_BYTES) throw new LeaseError(`lease longer than ${LEASE_MAX_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== HEADER) throw new LeaseError('not an HS256 JWS');
  const expected = mac(key, `${parts[0]}.${parts[1]}`);
  const given = Buffer.from(parts[2]!, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new LeaseError('bad signature');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    throw new LeaseError('payload is not JSON');
  }
  return checkClaims(claims);
}

function fail(message: string): never {
  throw new LeaseError(message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown, name: string, max = 256): string {
  if (typeof value !== 'string' || value.length > max) fail(`${name} must be a string of at most ${max} characters`);
  return value;
}

function num(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) fail(`${name} must be a number ${min}-${max}`);
  return value;
}

/** Header names and values a proxy may write: tokens, no CR/LF/NUL. */
function headers(value: unknown): Record<string, string> {
  if (!isObject(value)) fail('hold.headers must be an object');
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (!TOKEN_NAME.test(name)) fail(`hold.headers: ${JSON.stringify(name)} is not a header name`);
    if (typeof v !== 'string' || /[\r\n\0]/.test(v)) fail(`hold.headers.${name} must be a string without CR, LF or NUL`);
    out[name.toLowerCase()] = v;
  }
  return out;
}

function checkClaims(c: unknown): LeaseClaims {
  if (!isObject(c)) fail('claims must be an object');
  const cid = str(c.cid, 'cid', 64);
  if (!isConnectionId(cid)) fail('cid is not a connection ID');
  const bind = c.bind;
  if (!isObject(bind)) fail('bind must be an object');
  const cookie = str(bind.cookie, 'bind.cookie', 64);
  if (!TOKEN_NAME.test(cookie)) fail('bind.cookie is not a cookie name');
  const sha256 = str(bind.sha256, 'bind.sha256', 43);
  if (!/^[A-Za-z0-9_-]{43}$/.test(sha256)) fail('bind.sha256 is not a base64url SHA-256');
  if (!Array.isArray(c.ch) || c.ch.length === 0 || c.ch.length > 256) fail('ch must list 1-256 channels');
  const ch = c.ch.map((entry: unknown): [string, string] => {
    if (!Array.isArray(entry) || entry.length !== 2 || !isChannelName(entry[0]) || !isItemId(entry[1])) {
      fail('ch entries must be [channel, lastId]');
    }
    return [entry[0] as string, entry[1] as string];
  });
  const req = c.req;
  if (!isObject(req)) fail('req must be an object');
  const path = str(req.path, 'req.path');
  if (!PATH.test(path)) fail('req.path must be an absolute path without query');
  const cidParam = str(req.cid, 'req.cid', 64);
  const cursors = str(req.cursors, 'req.cursors', 64);
  if (cidParam === '' || cursors === '' || cidParam === cursors) fail('req.cid and req.cursors must be two different parameter names');
  const hold = c.hold;
  if (!isObject(hold)) fail('hold must be an object');
  const batch = c.batch;
  if (!isObject(batch)) fail('batch must be an object');
  const claims: LeaseClaims = {
    cid,
    sub: str(c.sub, 'sub', 128),
    bind: { cookie, sha256 },
    ch,
    iat: num(c.iat, 'iat', 0, 1e11),
    exp: num(c.exp, 'exp', 0, 1e11),
    req: { path, cid: cidParam, cursors, prefix: str(req.prefix, 'req.prefix', 64) },
    hold: {
      timeout: num(hold.timeout, 'hold.timeout', 0, 86_400),
      headers: headers(hold.headers),
      body: str(hold.body, 'hold.body', 64 * 1024),
    },
    batch: {
      prefix: str(batch.prefix, 'batch.prefix', 256),
      sep: str(batch.sep, 'batch.sep', 16),
      suffix: str(batch.suffix, 'batch.suffix', 256),
      max: num(batch.max, 'batch.max', 1, 10_000),
    },
  };
  if (hold.code !== undefined) claims.hold.code = num(hold.code, 'hold.code', 200, 599);
  if (claims.exp <= claims.iat) fail('exp must be after iat');
  return claims;
}
