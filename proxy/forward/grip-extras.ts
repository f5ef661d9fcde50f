/**
 * The GRIP instruction headers beyond hold, channel, timeout and status
 * (docs/protocol.md §3.1), read as Pushpin 1.36 reads them (its
 * src/handler/instruct.cpp): `Grip-Expose-Headers`, `Grip-Set-Meta`,
 * `Grip-Link`, and the `filter` parameter of `Grip-Channel`. Pure functions;
 * a malformed value throws `InstructionError`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ChannelSubscription } from '../../protocol/grip-channel.js';
import { GRIP_EXPOSE_HEADERS, GRIP_LINK, GRIP_SET_META } from '../../protocol/headers.js';
import { isSupportedFilter, isUnsupportedPushpinFilter } from '../holds/delivery-filters.js';
import { InstructionError } from './instruction.js';


/** Bounds on `Grip-Set-Meta`: it is kept with every parked request. */
export const MAX_META_ENTRIES = 16;
export const MAX_META_KEY_CHARS = 64;
export const MAX_META_VALUE_CHARS = 1024;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function values(headers: IncomingHttpHeaders, name: string): string[] {
  const value = headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Splits on `sep` outside double quotes (a backslash escapes the next character inside them). */
function splitOutside(text: string, sep: string, what: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted && ch === '\\' && i + 1 < text.length) {
      current += ch + text[++i];
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (quoted) throw new InstructionError(`${what}: unterminated quoted string`);
  parts.push(current);
  return parts;
}

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(.)/g, '$1');
  return v;
}

/** `Grip-Expose-Headers: X-A, X-B` (repeatable): the lower-case names, or null when the header is absent or empty. */
export function parseExposeHeaders(headers: IncomingHttpHeaders): Set<string> | null {
  const names = new Set<string>();
  for (const value of values(headers, GRIP_EXPOSE_HEADERS)) {
    for (const part of value.split(',')) {
      const name = part.trim();
      if (name === '') continue;
      if (!TOKEN.test(name)) throw new InstructionError(`Grip-Expose-Headers: ${JSON.stringify(name)} is not a header name`);
      names.add(name.toLowerCase());
    }
  }
  return names.size === 0 ? null : names;
}

/** Checks one meta entry and adds it to `meta` (a later key replaces an earlier one, as in Pushpin). */
export function addMeta(meta: Record<string, string>, key: string, value: string, what: string): void {
  if (key === '' || key.length > MAX_META_KEY_CHARS) throw new InstructionError(`${what}: a key must have 1-${MAX_META_KEY_CHARS} characters`);
  if (value.length > MAX_META_VALUE_CHARS) throw new InstructionError(`${what}: the value of ${key} is over ${MAX_META_VALUE_CHARS} characters`);
  if (!Object.hasOwn(meta, key) && Object.keys(meta).length >= MAX_META_ENTRIES) throw new InstructionError(`${what}: more than ${MAX_META_ENTRIES} keys`);
  meta[key] = value;
}

/**
 * `Grip-Set-Meta: user=ada, room="a b"` (repeatable): the subscription's meta, or null when absent. Each entry is
 * `key=value` (value a token or a quoted string); parameters after a `;` are ignored, as by Pushpin.
 */
export function parseSetMeta(headers: IncomingHttpHeaders): Record<string, string> | null {
  const list = values(headers, GRIP_SET_META);
  if (list.length === 0) return null;
  const meta: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const value of list) {
    for (const entry of splitOutside(value, ',', 'Grip-Set-Meta')) {
      if (entry.trim() === '') throw new InstructionError('Grip-Set-Meta cannot be empty');
      const first = splitOutside(entry, ';', 'Grip-Set-Meta')[0]!;
      const eq = first.indexOf('=');
      const key = (eq === -1 ? first : first.slice(0, eq)).trim();
      if (!TOKEN.test(key)) throw new InstructionError(`Grip-Set-Meta: ${JSON.stringify(key)} is not a key`);
      addMeta(meta, key, eq === -1 ? '' : unquote(first.slice(eq + 1)), 'Grip-Set-Meta');
    }
  }
  return { ...meta };
}

export interface GripLink {
  url: string;
  rel: string;
  /** `timeout=` in seconds (Pushpin's default for `rel=next`: 120). */
  timeoutS?: number;
}

/**
 * `Grip-Link: </next>; rel=next; timeout=30` (repeatable): every link with a `rel`. A link must be `<...>` with
 * something inside and `timeout` a non-negative integer, else the instruction is bad (as in Pushpin; entries with
 * no parameter at all are skipped, as there).
 */
export function parseGripLinks(headers: IncomingHttpHeaders): GripLink[] {
  const links: GripLink[] = [];
  for (const value of values(headers, GRIP_LINK)) {
    for (const entry of splitOutside(value, ',', 'Grip-Link')) {
      const [target = '', ...params] = splitOutside(entry, ';', 'Grip-Link').map((p) => p.trim());
      if (params.length === 0) continue;
      if (target.length <= 2 || !target.startsWith('<') || !target.endsWith('>')) {
        throw new InstructionError('Grip-Link must be <URL>; rel=...');
      }
      const link: GripLink = { url: target.slice(1, -1), rel: '' };
      for (const param of params) {
        const eq = param.indexOf('=');
        const key = (eq === -1 ? param : param.slice(0, eq)).trim().toLowerCase();
        const val = eq === -1 ? '' : unquote(param.slice(eq + 1));
        if (key === 'rel') link.rel = val;
        if (key === 'timeout') {
          if (!/^\d+$/.test(val)) throw new InstructionError(`Grip-Link timeout must be a non-negative integer, got ${JSON.stringify(val)}`);
          link.timeoutS = Number(val);
        }
      }
      links.push(link);
    }
  }
  return links;
}

/** Does the answer carry a `Grip-Link` with `rel=next` (Pushpin's paged streaming when there is no hold)? */
export function hasNextLink(headers: IncomingHttpHeaders): boolean {
  return parseGripLinks(headers).some((l) => l.rel === 'next');
}

/**
 * Channel filters: `skip-self`, `skip-users` and `require-sub` are applied at delivery (holds/delivery-filters.ts);
 * Pushpin's content filters (`build-id`, `var-subst`) and its HTTP filters rewrite or check items through other
 * services and are refused; names Pushpin does not know are dropped, as Pushpin ignores them.
 */
export function checkChannelFilters(channels: ChannelSubscription[]): void {
  for (const channel of channels) {
    if (channel.filters === undefined) continue;
    const refused = channel.filters.find(isUnsupportedPushpinFilter);
    if (refused !== undefined) {
      throw new InstructionError(`Grip-Channel filter ${refused} on ${channel.name} is not supported (only skip-self, skip-users, require-sub)`, 'PROXY_ERR_UNSUPPORTED_INSTRUCTION');
    }
    const kept = channel.filters.filter(isSupportedFilter);
    if (kept.length === 0) delete channel.filters;
    else channel.filters = kept;
  }
}
