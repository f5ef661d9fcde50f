/**
 * How proxy/repoll/repolls.ts read a re-poll's query and cursors before issue 15's "query/cursors read on indexes"
 * change (commit b41e4e4), kept verbatim as the reference proxy/repoll/repoll-query.ts is tested against
 * (test/proxy/repoll-query.test.ts).
 */
import type { ChannelSubscription } from '../../protocol/grip-channel.js';
import { isItemId } from '../../protocol/ids.js';
import type { CursorLease } from '../../proxy/repoll/repoll-query.js';

/** Form-decodes a query component; undefined for a malformed escape. Most components need nothing decoded. */
function decodeComponent(text: string): string | undefined {
  if (text.indexOf('%') === -1 && text.indexOf('+') === -1) return text;
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * The values of exactly the two parameters `a` and `b` in a query component, once each and nothing else, or null
 * (another name, a repeat, a malformed escape: the app decides those). No map per re-poll (issue 15).
 */
export function referenceParseTwo(query: string, a: string, b: string): [string, string] | null {
  let first: string | undefined;
  let second: string | undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    const eq = query.indexOf('=', start);
    const split = eq === -1 || eq > end ? end : eq;
    const name = decodeComponent(query.slice(start, split));
    const value = decodeComponent(split === end ? '' : query.slice(split + 1, end));
    if (value === undefined) return null;
    if (name === a && first === undefined) first = value;
    else if (name === b && second === undefined) second = value;
    else return null;
    start = end + 1;
  }
  return first === undefined || second === undefined ? null : [first, second];
}

/** `key:id,key:id` -> subscriptions on the lease's channels; a reason when the proxy cannot use them. */
export function referenceParseCursors(text: string, prefix: string, lease: CursorLease): ChannelSubscription[] | 'shape' | 'channel' {
  const subs: ChannelSubscription[] = [];
  for (const entry of text.split(',')) {
    const colon = entry.lastIndexOf(':');
    if (colon <= 0) return 'shape';
    const name = prefix + entry.slice(0, colon);
    const prevId = entry.slice(colon + 1);
    // A repeat is found among those before it (at most the lease's 256 channels get this far): no set per re-poll.
    if (!isItemId(prevId) || subs.some((sub) => sub.name === name)) return 'shape';
    if (!lease.channels.has(name)) return 'channel';
    subs.push({ name, prevId });
  }
  return subs;
}

