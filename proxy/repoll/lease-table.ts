/**
 * The leases this proxy holds (docs/protocol.md §13.1), one per connection ID,
 * and the revocations that end them. A lease arrives from the app in a
 * `Grip-Lease` header, is verified once (signature, claims, and that the
 * request it came with carries the binding) and kept, parsed, until it expires,
 * is replaced by a newer one for the same ID, or is revoked.
 *
 * A revocation names a subject or a connection ID and a time: every lease
 * issued at or before it is refused, including one still on its way from the
 * app when the revocation arrives. Revocations are kept for `maxLifetimeMs`
 * (no lease outlives that); when there are more than `maxRevocations`, every
 * lease issued until then is refused instead (a watermark), which is safe.
 */
import type { ClientRequest } from '../http/client-message.js';
import type { Logger } from 'pino';
import { bindingDigest, cookieValue, LeaseError, verifyLease, type LeaseClaims, type LeaseRequest } from '../../protocol/lease.js';
import { isGripHeader } from '../../protocol/headers.js';
import { isHopByHopHeader, type HeaderMap } from '../http/header-filter.js';
import type { RevokeCommand } from '../control/commands.js';
import type { HeldResponse } from '../http/response.js';
import { sharedTextBody } from '../http/shared-bodies.js';

export interface LeaseTableOptions {
  /** Verifies `Grip-Lease` signatures. */
  leaseKey: string;
  /** Leases kept; past it the least recently granted is dropped (its client's next poll goes to the app). */
  maxLeases: number;
  /** A lease whose `exp - iat` exceeds this is refused, ms; revocations are kept this long. */
  maxLifetimeMs: number;
  /** Revocations kept before falling back to a watermark. */
  maxRevocations: number;
  /** ms since the epoch: leases carry wall-clock times. */
  now: () => number;
  logger: Logger;
}

/** A verified lease, ready to use: times in ms, channels as a set, the timeout response prebuilt. */
export interface Lease {
  readonly claims: LeaseClaims;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
  readonly channels: ReadonlySet<string>;
  /** The hold response of a parked re-poll (docs §6: also the base of every delivery). */
  readonly held: HeldResponse;
  /** The last Cookie header that carried the binding. */
  matchedCookie?: string;
}

/** Why a granted lease was not kept: counted in metrics, logged at debug. */
export type GrantRefusal = 'invalid' | 'expired' | 'binding' | 'revoked';

/** Distinct lease parts remembered for sharing (`SharedLeaseParts`); an app has a handful. */
const SHARED_PARTS_MAX = 256;

/**
 * The parts of a lease that are the same for every client of an app (the hold, the batch envelope, the request
 * shape) and the hold response built from it, kept once and shared by every lease that carries equal ones
 * (issue 15: every parked client keeps its lease, and these were ~0.4 KB of separate copies per client). Keyed by
 * their JSON; at most SHARED_PARTS_MAX distinct of each, the oldest forgotten first. Nothing writes into them.
 */
class SharedLeaseParts {
  private readonly byJson = new Map<string, { value: object; held?: HeldResponse }>();

  /** Replaces `claims.hold`, `.batch` and `.req` by shared equal values; returns the hold response to keep. */
  share(claims: LeaseClaims): HeldResponse {
    claims.batch = this.one('b', claims.batch).value as LeaseClaims['batch'];
    claims.req = this.one('r', claims.req).value as LeaseClaims['req'];
    const hold = this.one('h', claims.hold);
    claims.hold = hold.value as LeaseClaims['hold'];
    return (hold.held ??= heldResponse(claims));
  }

  private one(kind: string, value: object): { value: object; held?: HeldResponse } {
    const key = kind + JSON.stringify(value);
    const known = this.byJson.get(key);
    if (known !== undefined) return known;
    if (this.byJson.size >= SHARED_PARTS_MAX * 3) this.byJson.delete(this.byJson.keys().next().value!);
    const entry = { value };
    this.byJson.set(key, entry);
    return entry;
  }
}

export class LeaseTable {
  private readonly byCid = new Map<string, Lease>();
  private readonly shared = new SharedLeaseParts();
  private readonly bySubject = new Map<string, Set<string>>();
  /** `s:<subject>` / `c:<cid>` -> issued-before ms; insertion order is age. */
  private readonly revoked = new Map<string, { before: number; at: number }>();
  private watermarkMs = 0;
  /** The request shape of the latest lease per path: how to find a re-poll's connection ID. */
  private readonly routes = new Map<string, LeaseRequest>();

  constructor(private readonly options: LeaseTableOptions) {}

  get size(): number {
    return this.byCid.size;
  }

  /** The request shape leases name for `path`, if any: the cheap first test of every client request. */
  routeFor(path: string): LeaseRequest | undefined {
    return this.routes.get(path);
  }

  /**
   * Takes the lease the app sent with its answer to `req`. Returns the lease, or why it was refused; a
   * refused lease changes nothing (the ID's previous lease, if any, is dropped: the app's newest word wins).
   */
  grant(token: string, req: ClientRequest): Lease | GrantRefusal {
    let claims: LeaseClaims;
    try {
      claims = verifyLease(token, this.options.leaseKey);
    } catch (err) {
      if (!(err instanceof LeaseError)) throw err;
      this.options.logger.warn({ reason: err.message }, 'Grip-Lease refused');
      return 'invalid';
    }
    this.drop(claims.cid);
    const issuedAtMs = claims.iat * 1000;
    const expiresAtMs = claims.exp * 1000;
    if (expiresAtMs <= this.options.now() || expiresAtMs - issuedAtMs > this.options.maxLifetimeMs) return 'expired';
    // The binding must be in the very request the app answered: a lease the app computed for another client is a bug.
    if (!this.bound(claims, req)) return 'binding';
    if (this.isRevoked(claims, issuedAtMs)) return 'revoked';
    const lease: Lease = {
      claims,
      issuedAtMs,
      expiresAtMs,
      channels: new Set(claims.ch.map(([name]) => name)),
      held: this.shared.share(claims),
    };
    this.byCid.set(claims.cid, lease);
    let ids = this.bySubject.get(claims.sub);
    if (ids === undefined) this.bySubject.set(claims.sub, (ids = new Set()));
    ids.add(claims.cid);
    this.routes.set(claims.req.path, claims.req);
    while (this.byCid.size > this.options.maxLeases) this.drop(this.byCid.keys().next().value!);
    return lease;
  }

  /** The live lease of `cid`, if any (an expired one is dropped). */
  lookup(cid: string): Lease | undefined {
    const lease = this.byCid.get(cid);
    if (lease === undefined) return undefined;
    if (lease.expiresAtMs <= this.options.now()) {
      this.drop(cid);
      return undefined;
    }
    return lease;
  }

  /**
   * Does `req` carry the lease's binding? A client sends the same Cookie header poll after poll, so the last
   * header that matched is remembered per lease (a string compare instead of a parse and a SHA-256 per re-poll).
   */
  bound(lease: Lease | LeaseClaims, req: ClientRequest): boolean {
    const header = req.headers.cookie;
    if ('claims' in lease && header !== undefined && header === lease.matchedCookie) return true;
    const claims = 'claims' in lease ? lease.claims : lease;
    const value = cookieValue(header, claims.bind.cookie);
    const ok = value !== undefined && bindingDigest(value) === claims.bind.sha256;
    if (ok && 'claims' in lease && typeof header === 'string') lease.matchedCookie = header;
    return ok;
  }

  /** Ends the matching leases and remembers the revocation. Returns the connection IDs whose lease ended. */
  revoke(command: RevokeCommand): string[] {
    const ended: string[] = [];
    const end = (cid: string) => {
      const lease = this.byCid.get(cid);
      if (lease !== undefined && lease.issuedAtMs <= command.issuedBeforeMs) {
        this.drop(cid);
        ended.push(cid);
      }
    };
    if (command.connectionId !== undefined) {
      end(command.connectionId);
      this.remember(`c:${command.connectionId}`, command.issuedBeforeMs);
    }
    if (command.subject !== undefined) {
      for (const cid of [...(this.bySubject.get(command.subject) ?? [])]) end(cid);
      this.remember(`s:${command.subject}`, command.issuedBeforeMs);
    }
    return ended;
  }

  /**
   * The proxy may have missed revocations (a bus gap): refuse every lease issued until now and drop those held.
   * Each client's next re-poll goes to the app once, which grants a fresh lease if the client may still have one.
   */
  refuseAllIssuedUntilNow(): void {
    this.watermarkMs = Math.max(this.watermarkMs, this.options.now());
    for (const cid of [...this.byCid.keys()]) this.drop(cid);
  }

  /** Forgets revocations older than any lease can be. Runs on the proxy's sweep timer. */
  sweep(): void {
    const cutoff = this.options.now() - this.options.maxLifetimeMs;
    for (const [key, entry] of this.revoked) {
      if (entry.at > cutoff) break;
      this.revoked.delete(key);
    }
  }

  private isRevoked(claims: LeaseClaims, issuedAtMs: number): boolean {
    if (issuedAtMs <= this.watermarkMs) return true;
    const byCid = this.revoked.get(`c:${claims.cid}`);
    const bySubject = this.revoked.get(`s:${claims.sub}`);
    return (byCid !== undefined && issuedAtMs <= byCid.before) || (bySubject !== undefined && issuedAtMs <= bySubject.before);
  }

  private remember(key: string, before: number): void {
    const previous = this.revoked.get(key);
    this.revoked.delete(key);
    this.revoked.set(key, { before: Math.max(before, previous?.before ?? 0), at: this.options.now() });
    if (this.revoked.size > this.options.maxRevocations) {
      // Too many to remember one by one: refuse every lease issued until now, and drop those held.
      this.watermarkMs = Math.max(this.watermarkMs, before);
      this.revoked.clear();
      this.refuseAllIssuedUntilNow();
      this.options.logger.warn({ maxRevocations: this.options.maxRevocations }, 'too many lease revocations: every lease issued until now is refused');
    }
  }

  private drop(cid: string): void {
    const lease = this.byCid.get(cid);
    if (lease === undefined) return;
    this.byCid.delete(cid);
    const ids = this.bySubject.get(lease.claims.sub);
    ids?.delete(cid);
    if (ids?.size === 0) this.bySubject.delete(lease.claims.sub);
  }
}

/** The lease's hold response; framing, hop-by-hop and `Grip-*` headers are not the app's to set here (docs §6). */
function heldResponse(claims: LeaseClaims): HeldResponse {
  const headers: HeaderMap = {};
  for (const [name, value] of Object.entries(claims.hold.headers)) {
    if (name !== 'content-length' && !isHopByHopHeader(name) && !isGripHeader(name)) headers[name] = value;
  }
  return { code: claims.hold.code ?? 200, headers, body: sharedTextBody(claims.hold.body) };
}
