/**
 * Channel delivery filters (docs/protocol.md §7.1), exactly Pushpin's rules
 * (fastly/pushpin src/handler/filter.cpp): a hold's channel may name filters
 * (`Grip-Channel: room; filter=skip-self`) that drop a published item for that
 * hold, deciding from the hold's meta (`Grip-Set-Meta`) and the item's `meta`:
 *
 * - `skip-self`: dropped when the hold's `user` and the item's `sender` are both non-empty and equal;
 * - `skip-users`: dropped when the hold's `user` is non-empty and in the item's comma-separated `skip_users`;
 * - `require-sub`: dropped when the item's `require_sub` is non-empty and the hold is not on that channel.
 *
 * Pure; the cost is nothing for holds without filters.
 */
import type { ChannelSubscription } from '../../protocol/grip-channel.js';

const SUPPORTED = new Set(['skip-self', 'skip-users', 'require-sub']);
/** Pushpin filters that rewrite content or call out over HTTP: refused at hold time. */
const PUSHPIN_ONLY = new Set(['build-id', 'var-subst', 'http-check', 'http-modify']);

export function isSupportedFilter(name: string): boolean {
  return SUPPORTED.has(name);
}

export function isUnsupportedPushpinFilter(name: string): boolean {
  return PUSHPIN_ONLY.has(name);
}

type Meta = Readonly<Record<string, string>> | undefined;

function dropsBy(filter: string, subscription: Meta, item: Meta, channels: readonly ChannelSubscription[]): boolean {
  const user = subscription?.user ?? '';
  switch (filter) {
    case 'skip-self': {
      const sender = item?.sender ?? '';
      return user !== '' && sender !== '' && sender === user;
    }
    case 'skip-users': {
      if (user === '') return false;
      return (item?.skip_users ?? '').split(',').some((s) => s.trim() === user);
    }
    case 'require-sub': {
      const required = item?.require_sub ?? '';
      return required !== '' && !channels.some((c) => c.name === required);
    }
    default:
      return false;
  }
}

/** Does a filter of `channel` drop an item with `itemMeta` for a hold with `holdMeta` on `channels`? */
export function filtersDrop(channel: ChannelSubscription, holdMeta: Meta, itemMeta: Meta, channels: readonly ChannelSubscription[]): boolean {
  const filters = channel.filters;
  if (filters === undefined) return false;
  for (const filter of filters) if (dropsBy(filter, holdMeta, itemMeta, channels)) return true;
  return false;
}
