/**
 * Small held-response bodies, one copy each (issue 15: memory per parked request). Every parked request keeps the
 * body of its timeout response (docs/protocol.md §6), and every lease keeps the body of its hold: with 10,000 clients
 * of one app these are 10,000 copies of the same few bytes (the chat's `{"events":[]}`). Each copy was also a
 * slice of an 8 KiB pool slab, so the few bytes kept the whole slab alive: 0.95 KB per parked request in a heap
 * snapshot of 5,000 parked, for 2 bodies of 13 bytes.
 *
 * Bodies up to SHARED_BODY_MAX_BYTES are looked up by content and the one copy returned, in memory of its own
 * (not a pool slice). Callers never write into a held body, so sharing one is safe. At most SHARED_BODIES_MAX
 * distinct bodies are kept (the oldest dropped first): an app that sends a different small body per client gains
 * nothing and costs only the lookup.
 */

/** Larger bodies are kept as they came: sharing pays for the common, tiny ones. */
export const SHARED_BODY_MAX_BYTES = 512;
/** Distinct bodies remembered at most. */
export const SHARED_BODIES_MAX = 1024;

const bodies = new Map<string, Buffer>();

/** The one shared copy of `body` (equal bytes), or `body` itself when it is too large to share. */
export function sharedBody(body: Buffer): Buffer {
  if (body.length > SHARED_BODY_MAX_BYTES) return body;
  const key = body.toString('latin1');
  const known = bodies.get(key);
  if (known !== undefined) return known;
  if (bodies.size >= SHARED_BODIES_MAX) bodies.delete(bodies.keys().next().value!);
  // Memory of its own: a pool slice would keep its whole slab alive for as long as the body is shared.
  const own = Buffer.allocUnsafeSlow(body.length);
  body.copy(own);
  bodies.set(key, own);
  return own;
}

/** `text` as a shared body (UTF-8), for bodies that arrive as strings (lease claims). */
export function sharedTextBody(text: string): Buffer {
  return sharedBody(Buffer.from(text, 'utf8'));
}
