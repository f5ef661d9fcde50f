/**
 * Grip-Channel / Grip-Last header values: a comma-separated list of
 * `name; param=value; ...` entries (Pushpin's syntax). Values may be tokens or
 * quoted strings. Pure functions, no I/O.
 */
import { isChannelName, isItemId } from './ids.js';

export interface ChannelSubscription {
  /** Channel name. */
  name: string;
  /** The last item id the client has on this channel, if the app named one. */
  prevId?: string;
  /** Pushpin's delivery filters (`filter=skip-self`, repeatable), in order; absent when none. */
  filters?: string[];
}

/** Most `filter` parameters on one channel (Pushpin's MESSAGEFILTERSTACK_SIZE_MAX). */
export const MAX_CHANNEL_FILTERS = 5;

export class GripChannelSyntaxError extends Error {
  override name = 'GripChannelSyntaxError';
}

/** Splits on `sep` outside double quotes. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  // Without quotes it is a plain split; the loop below builds a string per character (every hold, every re-poll).
  if (text.indexOf('"') === -1) return text.split(sep);
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"' && text[i - 1] !== '\\') quoted = !quoted;
    if (ch === sep && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (quoted) throw new GripChannelSyntaxError('unterminated quoted string');
  parts.push(current);
  return parts;
}

function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    return value.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return value;
}

/** Parses one or more Grip-Channel header values (Node gives repeated headers as an array). */
export function parseGripChannels(values: string | string[] | undefined): ChannelSubscription[] {
  if (values === undefined) return [];
  const list = Array.isArray(values) ? values : [values];
  const out: ChannelSubscription[] = [];
  const seen = new Set<string>();
  for (const value of list) {
    for (const entry of splitOutsideQuotes(value, ',')) {
      if (entry.trim() === '') continue;
      const [rawName, ...params] = splitOutsideQuotes(entry, ';');
      const name = (rawName ?? '').trim();
      if (!isChannelName(name)) throw new GripChannelSyntaxError(`invalid channel name ${JSON.stringify(name)}`);
      if (seen.has(name)) throw new GripChannelSyntaxError(`channel ${name} named twice`);
      seen.add(name);
      const sub: ChannelSubscription = { name };
      for (const param of params) {
        const eq = param.indexOf('=');
        const key = (eq === -1 ? param : param.slice(0, eq)).trim().toLowerCase();
        const val = eq === -1 ? '' : unquote(param.slice(eq + 1).trim());
        if (key === 'prev-id') {
          if (!isItemId(val)) throw new GripChannelSyntaxError(`invalid prev-id ${JSON.stringify(val)} for channel ${name}`);
          sub.prevId = val;
        } else if (key === 'filter') {
          if (val === '') throw new GripChannelSyntaxError(`empty filter for channel ${name}`);
          (sub.filters ??= []).push(val);
          if (sub.filters.length > MAX_CHANNEL_FILTERS) throw new GripChannelSyntaxError(`too many filters for channel ${name} (at most ${MAX_CHANNEL_FILTERS})`);
        }
        // Other parameters are accepted and ignored, as by Pushpin.
      }
      out.push(sub);
    }
  }
  return out;
}

/** Formats subscriptions as one Grip-Channel header value. */
export function formatGripChannels(subs: readonly ChannelSubscription[]): string {
  return subs.map((s) => (s.prevId === undefined ? s.name : `${s.name}; prev-id=${s.prevId}`)).join(', ');
}

/** Formats the Grip-Last header value sent on a re-ask: `name; last-id=ID, ...`. */
export function formatGripLast(lastIds: ReadonlyMap<string, string>): string {
  return [...lastIds].map(([name, id]) => `${name}; last-id=${id}`).join(', ');
}
