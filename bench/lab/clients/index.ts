/** One subscriber class per client protocol (bench/models/target.ts `ClientProtocol`). */
import type { ClientProtocol } from '../../models/target.js';
import { ChatLongPollSubscriber } from './chat-long-poll.js';
import { ChatShortPollSubscriber } from './chat-short-poll.js';
import { ChatSseSubscriber } from './chat-sse.js';
import { ForeverIframeSubscriber } from './forever-iframe.js';
import { NchanLongPollSubscriber } from './nchan-long-poll.js';
import { SseSubscriber } from './sse.js';
import type { Subscriber, SubscriberOptions } from './subscriber.js';

const SUBSCRIBERS: Record<ClientProtocol, new (options: SubscriberOptions) => Subscriber> = {
  'chat-long-poll': ChatLongPollSubscriber,
  'chat-short-poll': ChatShortPollSubscriber,
  'chat-sse': ChatSseSubscriber,
  sse: SseSubscriber,
  'forever-iframe': ForeverIframeSubscriber,
  'nchan-long-poll': NchanLongPollSubscriber,
};

export function createSubscriber(protocol: ClientProtocol, options: SubscriberOptions): Subscriber {
  const Class = SUBSCRIBERS[protocol];
  if (Class === undefined) throw new Error(`no lab client for protocol ${JSON.stringify(protocol)}`);
  return new Class(options);
}

/** True for the protocols that speak the chat API (sessions, rooms, joins). */
export function isChatProtocol(protocol: ClientProtocol): boolean {
  return protocol !== 'nchan-long-poll';
}
