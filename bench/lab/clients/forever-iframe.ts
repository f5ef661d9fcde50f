/**
 * `forever-iframe`: `GET /api/stream?rooms=<room>:<cursor>&transport=iframe`,
 * a `text/html` document that never ends: padding (so browsers start
 * rendering), then one `<script>parent.comet(EVENT_JSON)</script>` chunk per
 * chat event; `parent.comet(null)` is a keepalive. The JSON has `<` escaped as
 * `\u003c`, so `</script>` never occurs inside it. Parsed incrementally; when
 * the document ends or breaks the client reconnects from its cursor.
 */
import { ChatSubscriber } from './chat-subscriber.js';

const OPEN = '<script>parent.comet(';
const CLOSE = '</script>';
/** Longest script chunk the parser buffers: a chat event is at most a few KB. */
const MAX_CHUNK_CHARS = 1024 * 1024;

/** An incremental parser of the forever-iframe document: the payloads of `parent.comet(...)` calls, keepalives dropped. */
export class IframeParser {
  private buffer = '';

  push(chunk: string): unknown[] {
    const text = this.buffer + chunk;
    const payloads: unknown[] = [];
    let at = 0;
    for (;;) {
      const open = text.indexOf(OPEN, at);
      if (open < 0) {
        // Padding and other markup: keep only a tail that may be the start of a split `<script>parent.comet(`.
        at = Math.max(at, text.length - (OPEN.length - 1));
        break;
      }
      const close = text.indexOf(CLOSE, open + OPEN.length);
      if (close < 0) {
        at = open;
        break;
      }
      // `parent.comet(JSON)` and, leniently, `parent.comet(JSON);`
      const call = text.slice(open + OPEN.length, close).trimEnd().replace(/;$/, '').trimEnd();
      if (!call.endsWith(')')) throw new Error(`forever-iframe: malformed script chunk ${JSON.stringify(call.slice(0, 200))}`);
      const value: unknown = JSON.parse(call.slice(0, -1));
      if (value !== null) payloads.push(value);
      at = close + CLOSE.length;
    }
    this.buffer = text.slice(at);
    if (this.buffer.length > MAX_CHUNK_CHARS) throw new Error(`forever-iframe: script chunk over ${MAX_CHUNK_CHARS} characters`);
    return payloads;
  }
}

/** A document that ends sooner than this without any event is followed by a back-off, not an instant reconnect. */
const QUICK_END_MS = 1_000;

export class ForeverIframeSubscriber extends ChatSubscriber {
  protected async round(): Promise<void> {
    const parser = new IframeParser();
    const opened = performance.now();
    let events = 0;
    let answer;
    try {
      answer = await this.http.stream(`/api/stream?${this.roomsParam()}&transport=iframe`, { headers: { accept: 'text/html' }, onSent: this.sent }, (chunk) => {
        if (events === 0) this.succeeded();
        for (const payload of parser.push(chunk)) {
          events++;
          this.event(payload);
        }
      });
    } catch (err) {
      await this.failed(err);
      return;
    }
    if (answer.status !== 200) {
      await this.badStatus(answer.status);
      return;
    }
    if (events === 0 && performance.now() - opened < QUICK_END_MS) await this.backOff();
  }
}
