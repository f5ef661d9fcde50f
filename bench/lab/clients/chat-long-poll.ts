/**
 * `chat-long-poll`: `GET /api/poll?rooms=<room>:<cursor>&cid=<cid>`, held by
 * the server until news or its hold timeout (docs/chat-api.md). Each answer's
 * events move the cursor; the next poll goes out at once. A failed poll is
 * retried from the same cursor after a bounded back-off.
 */
import { COMET_CONNECTION_ID } from '../../../protocol/headers.js';
import { ChatSubscriber } from './chat-subscriber.js';
import { RETRY_MIN_MS } from './subscriber.js';

/** Connection-ID refusals: the client drops its ID and gets a new one with the next poll. */
const CID_ERRORS = new Set(['APP_ERR_BAD_CONNECTION_ID', 'APP_ERR_FOREIGN_CONNECTION_ID']);
/** An empty long-poll answer sooner than this is not a hold timeout (a server that does not hold): pause rather than spin. */
const QUICK_EMPTY_MS = 100;

interface PollBody {
  events?: unknown;
  connectionId?: unknown;
  code?: unknown;
}

/** The answer's JSON object, or null when it is not one. */
function parseBody(text: string): PollBody | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as PollBody) : null;
  } catch {
    return null;
  }
}

export class ChatLongPollSubscriber extends ChatSubscriber {
  /** The poll's connection ID (issued by the server on the first poll). */
  private cid: string | undefined;

  /** Wait before the next poll, ms: none for long polling. */
  protected pauseMs(): number {
    return 0;
  }

  protected async round(): Promise<void> {
    const path = `/api/poll?${this.roomsParam()}${this.cid === undefined ? '' : `&cid=${encodeURIComponent(this.cid)}`}`;
    const sentAt = performance.now();
    let answer;
    try {
      answer = await this.http.request(path, { onSent: this.sent });
    } catch (err) {
      await this.failed(err);
      return;
    }
    const body = parseBody(answer.body);
    if (answer.status !== 200) {
      if (typeof body?.code === 'string' && CID_ERRORS.has(body.code)) this.cid = undefined;
      await this.badStatus(answer.status);
      return;
    }
    if (body === null || !Array.isArray(body.events)) {
      await this.failed(new Error(`poll answer without events: ${answer.body.slice(0, 200)}`));
      return;
    }
    const header = answer.headers[COMET_CONNECTION_ID.toLowerCase()];
    const cid = typeof body.connectionId === 'string' ? body.connectionId : typeof header === 'string' ? header : undefined;
    if (cid !== undefined) this.cid = cid;
    for (const event of body.events) this.event(event);
    this.succeeded();
    if (body.events.length > 0) await this.afterMessages();
    const pause = this.pauseMs();
    if (pause > 0) await this.pause(pause);
    else if (body.events.length === 0 && performance.now() - sentAt < QUICK_EMPTY_MS) await this.pause(RETRY_MIN_MS);
  }
}
