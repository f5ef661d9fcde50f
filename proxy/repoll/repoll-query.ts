/**
 * The query of a leased re-poll (docs/protocol.md §13), read where it lies in the request target: the connection
 * ID, and the cursors (`key:id,key:id`) as subscriptions on the lease's channels. Read on indexes, because a
 * re-poll that parks keeps what is made here until its answer (issue 15: the split-and-slice version allocated
 * ~600 B per re-poll, a map, tuple, arrays and strings, and what a parked request keeps is promoted to old space).
 * Same results as that version (test/proxy/repoll-query.test.ts compares them on generated queries).
 */
import type { ChannelSubscription } from '../../protocol/grip-channel.js';
import { isItemId } from '../../protocol/ids.js';
import type { Lease } from './lease-table.js';

/** What `readRepollQuery` found: the connection ID, and the cursors as `text[start, end)` (the URL itself unless they needed decoding). */
export interface RepollQuery {
  cid: string;
  text: string;
  start: number;
  end: number;
}

/** What the cursors are checked against: the lease's channels. */
export type CursorLease = Pick<Lease, 'channels'> & { readonly claims: Pick<Lease['claims'], 'ch'> };

/** Form-decodes a query component; undefined for a malformed escape. Most components need nothing decoded. */
function decodeComponent(text: string): string | undefined {
  if (text.indexOf('%') === -1 && text.indexOf('+') === -1) return text;
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** Does `text[start, end)` need form-decoding (`%` or `+`)? */
function escaped(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 || c === 0x2b) return true;
  }
  return false;
}

/** Is the query component name `url[start, end)`, decoded, `name`? */
function nameIs(url: string, start: number, end: number, name: string): boolean {
  if (!escaped(url, start, end)) return end - start === name.length && url.startsWith(name, start);
  return decodeComponent(url.slice(start, end)) === name;
}

/** One object for every re-poll, read at once by the caller: no map, tuple or copy per re-poll (issue 15). */
const query: RepollQuery = { cid: '', text: '', start: 0, end: 0 };

/**
 * Reads the query component of `url` from `from`: exactly the two parameters `a` (the connection ID) and `b` (the
 * cursors), once each and nothing else; null otherwise (another name, a repeat, a malformed escape: the app
 * decides those). The object returned is reused by the next call: read it at once.
 */
export function readRepollQuery(url: string, from: number, a: string, b: string): RepollQuery | null {
  let haveA = false;
  let haveB = false;
  let start = from;
  while (start <= url.length) {
    let end = url.indexOf('&', start);
    if (end === -1) end = url.length;
    let split = url.indexOf('=', start);
    if (split === -1 || split > end) split = end;
    const valueStart = split === end ? end : split + 1;
    const plain = !escaped(url, valueStart, end);
    let value: string | undefined;
    if (!plain) {
      value = decodeComponent(url.slice(valueStart, end));
      if (value === undefined) return null;
    }
    if (!haveA && nameIs(url, start, split, a)) {
      haveA = true;
      query.cid = value ?? url.slice(valueStart, end);
    } else if (!haveB && nameIs(url, start, split, b)) {
      haveB = true;
      if (value === undefined) {
        query.text = url;
        query.start = valueStart;
        query.end = end;
      } else {
        query.text = value;
        query.start = 0;
        query.end = value.length;
      }
    } else return null;
    start = end + 1;
  }
  return haveA && haveB ? query : null;
}

/** Is `name` the prefix followed by `text[start, end)`? */
function isPrefixed(name: string, prefix: string, text: string, start: number, end: number): boolean {
  if (name.length !== prefix.length + end - start || !name.startsWith(prefix)) return false;
  for (let i = start, k = prefix.length; i < end; i++, k++) if (text.charCodeAt(i) !== name.charCodeAt(k)) return false;
  return true;
}

/** Up to this many channels a lease's own name strings are looked through instead of making one per cursor. */
const SHARED_NAMES_MAX = 8;

/**
 * `key:id,key:id` in `text[start, end)` -> subscriptions on the lease's channels; a reason when the proxy cannot
 * use them. The channel names are the lease's own strings where it has few channels: they live in old space
 * already, where a new one per parked re-poll would be promoted there.
 */
export function readCursors(text: string, start: number, end: number, prefix: string, lease: CursorLease): ChannelSubscription[] | 'shape' | 'channel' {
  // Sized to the entries: the array is the parked hold's channel list (one grown by pushes has room for 16).
  let entries = 1;
  for (let i = text.indexOf(',', start); i !== -1 && i < end; i = text.indexOf(',', i + 1)) entries++;
  const subs = new Array<ChannelSubscription>(entries);
  let count = 0;
  const claimed = lease.claims.ch;
  for (let pos = start; ; ) {
    let entryEnd = text.indexOf(',', pos);
    if (entryEnd === -1 || entryEnd > end) entryEnd = end;
    const colon = entryEnd > pos ? text.lastIndexOf(':', entryEnd - 1) : -1;
    if (colon <= pos) return 'shape';
    let name: string | undefined;
    if (claimed.length <= SHARED_NAMES_MAX) {
      for (let c = 0; c < claimed.length && name === undefined; c++) {
        if (isPrefixed(claimed[c]![0], prefix, text, pos, colon)) name = claimed[c]![0];
      }
    } else {
      name = prefix + text.slice(pos, colon);
      if (!lease.channels.has(name)) name = undefined;
    }
    const prevId = text.slice(colon + 1, entryEnd);
    if (!isItemId(prevId)) return 'shape';
    // Not the lease's: after the id check, as a repeat of a lease channel is `shape` before it.
    if (name === undefined) return 'channel';
    // A repeat is found among those before it (at most the lease's 256 channels get this far): no set per re-poll.
    for (let s = 0; s < count; s++) if (subs[s]!.name === name) return 'shape';
    subs[count++] = { name, prevId };
    if (entryEnd === end) return subs;
    pos = entryEnd + 1;
  }
}
