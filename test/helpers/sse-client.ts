/**
 * A chat client's server-sent events reader for tests, as EventSource behaves: follows
 * `/api/stream?rooms=...` with the session cookie, reconnects whenever the stream ends or fails (the proxy
 * restarting, a resync), sending `Last-Event-ID` with the last `id:` it saw, the URL unchanged. Records every
 * event raw, in arrival order (no de-duplication), so counting tests see duplicates and gaps. Bounded in connects.
 */
import http from 'node:http';
import type { ChatEvent } from './chat-client.js';

export interface SseFrame {
  event: string;
  id: string | undefined;
  data: string;
}

/** Parses complete `\n\n`-ended SSE blocks off `buffer`; returns the frames and what is left. Comments are skipped. */
export function parseSse(buffer: string): { frames: SseFrame[]; rest: string } {
  const frames: SseFrame[] = [];
  let end: number;
  while ((end = buffer.indexOf('\n\n')) !== -1) {
    const block = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'id') id = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0 || id !== undefined) frames.push({ event, id, data: data.join('\n') });
  }
  return { frames, rest: buffer };
}

export class SseChatFollower {
  readonly received: ChatEvent[] = [];
  readonly frames: SseFrame[] = [];
  readonly statuses: number[] = [];
  connects = 0;
  resyncs = 0;
  lastEventId: string | undefined;
  private stopped = false;
  private req: http.ClientRequest | null = null;

  constructor(
    private readonly base: string,
    private readonly path: string,
    private readonly cookie: string,
    private readonly maxConnects = 200,
  ) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.req?.destroy();
  }

  private connect(): void {
    if (this.stopped || ++this.connects > this.maxConnects) return;
    const headers: Record<string, string> = { accept: 'text/event-stream', cookie: this.cookie };
    if (this.lastEventId !== undefined) headers['last-event-id'] = this.lastEventId;
    let buffer = '';
    let again = false;
    // Once per stream, after a short pause (EventSource's retry).
    const reconnect = (): void => {
      if (again) return;
      again = true;
      setTimeout(() => this.connect(), 50);
    };
    const req = http.request(`${this.base}${this.path}`, { agent: false, headers }, (res) => {
      this.statuses.push(res.statusCode ?? 0);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (res.statusCode !== 200) return;
        const parsed = parseSse(buffer + chunk);
        buffer = parsed.rest;
        for (const frame of parsed.frames) {
          this.frames.push(frame);
          if (frame.id !== undefined) this.lastEventId = frame.id;
          if (frame.event === 'message') this.received.push(JSON.parse(frame.data) as ChatEvent);
          else if (frame.event === 'resync') this.resyncs++;
        }
      });
      res.on('end', reconnect);
      res.on('error', reconnect);
      res.on('close', reconnect);
    });
    req.on('error', reconnect);
    req.end();
    this.req = req;
  }
}
