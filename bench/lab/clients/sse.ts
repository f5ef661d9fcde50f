/**
 * `sse`: `GET /api/stream?rooms=<room>:<cursor>&transport=sse`, a
 * `text/event-stream` with one `id:`/`data:` event per chat event. The stream
 * is parsed incrementally (chunks split anywhere); when it ends or breaks the
 * client reconnects from its cursor and sends `Last-Event-ID`, as a browser's
 * EventSource would.
 */
import { ChatSubscriber } from './chat-subscriber.js';

export interface SseEvent {
  /** The `id:` field of this event block, if it had one. */
  id: string | undefined;
  /** The `data:` lines joined with `\n` ('' when none). */
  data: string;
  /** The `event:` field ('' when none). */
  event: string;
}

/** Longest line the parser buffers: a chat event is at most a few KB. */
const MAX_LINE_CHARS = 1024 * 1024;

/**
 * An incremental parser of the event-stream format (WHATWG HTML, "Parsing an
 * event stream"): lines end in CRLF, LF or CR; `:` starts a comment; a blank
 * line ends an event. Blocks with neither data nor id are dropped.
 */
export class SseParser {
  private buffer = '';
  /** The last chunk ended in CR: a LF starting the next chunk belongs to it. */
  private skipLf = false;
  private data: string[] = [];
  private id: string | undefined;
  private event = '';

  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (this.skipLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLf = false;
    const buffer = this.buffer + text;
    const events: SseEvent[] = [];
    const ends = /\r\n|\r|\n/g;
    let start = 0;
    for (let match = ends.exec(buffer); match !== null; match = ends.exec(buffer)) {
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === '\r' && match.index === buffer.length - 1) this.skipLf = true;
      this.line(buffer.slice(start, match.index), events);
      start = match.index + match[0].length;
    }
    this.buffer = buffer.slice(start);
    if (this.buffer.length > MAX_LINE_CHARS) throw new Error(`event-stream line over ${MAX_LINE_CHARS} characters`);
    return events;
  }

  private line(line: string, events: SseEvent[]): void {
    if (line === '') {
      if (this.data.length > 0 || this.id !== undefined) events.push({ id: this.id, data: this.data.join('\n'), event: this.event });
      this.data = [];
      this.id = undefined;
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'event') this.event = value;
  }
}

/** A stream that ends sooner than this without any event is followed by a back-off, not an instant reconnect. */
const QUICK_END_MS = 1_000;

export class SseSubscriber extends ChatSubscriber {
  private lastEventId: string | undefined;

  protected async round(): Promise<void> {
    const parser = new SseParser();
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.lastEventId !== undefined) headers['last-event-id'] = this.lastEventId;
    const opened = performance.now();
    let events = 0;
    let answer;
    try {
      // The cursor in the URL and Last-Event-ID agree: a server may resume from either.
      answer = await this.http.stream(`/api/stream?${this.roomsParam()}&transport=sse`, { headers, onSent: this.sent }, (chunk) => {
        if (events === 0) this.succeeded();
        for (const event of parser.push(chunk)) {
          events++;
          if (event.id !== undefined) this.lastEventId = event.id;
          if (event.data !== '') this.event(JSON.parse(event.data));
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
