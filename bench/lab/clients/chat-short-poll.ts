/**
 * `chat-short-poll`: the chat poll request, answered at once by the server
 * (news or an empty list); the client waits `shortPollIntervalMs` between
 * polls. The first poll of each client is spread over one interval, so a few
 * thousand clients do not poll in lockstep for the whole run.
 */
import { ChatLongPollSubscriber } from './chat-long-poll.js';

export class ChatShortPollSubscriber extends ChatLongPollSubscriber {
  private first = true;

  protected override pauseMs(): number {
    return this.options.shortPollIntervalMs;
  }

  protected override async round(): Promise<void> {
    if (this.first) {
      this.first = false;
      await this.pause(Math.random() * this.options.shortPollIntervalMs);
      if (this.stopped) return;
    }
    await super.round();
  }
}
