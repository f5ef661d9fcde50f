/**
 * `chat-sse`: the chat app's own stream, `GET /api/stream?rooms=<room>:<cursor>&format=sse&cid=<cid>`
 * (docs/protocol.md §10.2), held by our proxy as a stream (§14). The first frame is `event: hello` with the
 * connection ID to send when reopening; then one `id:`/`data:` frame per chat event, keep-alive comments
 * (ignored by the parser), and, when the proxy ends a stream that fell behind or out of order, `event: resync`.
 * Whenever the stream ends (resync, a cut first answer, a restart) the client reopens it from its cursor, as
 * public/js/comet-stream.js does: the cursor only moves on events read, so nothing is lost, and an event at or
 * below it is not counted twice (verify.ts sees every copy).
 */
import { ChatSubscriber } from './chat-subscriber.js';
import { SseParser } from './sse.js';

/** Connection-ID refusals: the client drops its ID and the next stream gets a new one. */
const CID_ERRORS = new Set(['APP_ERR_BAD_CONNECTION_ID', 'APP_ERR_FOREIGN_CONNECTION_ID']);
/** A stream that ends sooner than this without a chat event is followed by a back-off, not an instant reopen. */
const QUICK_END_MS = 1_000;

/** The error code of a refused stream's JSON body (`{"error":{"code":...}}`), or undefined. */
function errorCode(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown }; code?: unknown } | null;
    const code = body?.error?.code ?? body?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

export class ChatSseSubscriber extends ChatSubscriber {
  /** The stream's connection ID, from the `hello` frame. */
  private cid: string | undefined;

  protected async round(): Promise<void> {
    const parser = new SseParser();
    const opened = performance.now();
    let events = 0;
    let hello = false;
    const path = `/api/stream?${this.roomsParam()}&format=sse${this.cid === undefined ? '' : `&cid=${encodeURIComponent(this.cid)}`}`;
    let answer;
    try {
      // No Last-Event-ID: the cursor in the URL says where to resume (it would raise every cursor to the same id).
      answer = await this.http.stream(path, { headers: { accept: 'text/event-stream' }, onSent: this.sent }, (chunk) => {
        for (const frame of parser.push(chunk)) {
          if (frame.event === 'hello') {
            hello = true;
            this.succeeded();
            const cid = (JSON.parse(frame.data) as { connectionId?: unknown }).connectionId;
            if (typeof cid === 'string') this.cid = cid;
          } else if (frame.event === 'resync') {
            // The proxy ends the stream right after it: the next round reopens from the cursor.
            this.sink.resync();
          } else if (frame.data !== '') {
            events++;
            this.event(JSON.parse(frame.data));
          }
        }
      });
    } catch (err) {
      await this.failed(err);
      return;
    }
    if (answer.status !== 200) {
      const code = errorCode(answer.body);
      if (code !== undefined && CID_ERRORS.has(code)) this.cid = undefined;
      await this.badStatus(answer.status);
      return;
    }
    if (!hello || (events === 0 && performance.now() - opened < QUICK_END_MS)) await this.backOff();
  }
}
