/**
 * The SSE baseline's wire format (WHATWG HTML §9.2, Server-sent events):
 * `text/event-stream`, one `id:` + `data:` block per chat event, `Last-Event-ID`
 * on reconnect. Served by the event-driven core (bench/models/event-driven.ts)
 * at `GET /api/stream?rooms=...&transport=sse`.
 */
import type { IncomingMessage } from 'node:http';
import type { StreamFormat } from './event-driven/stream-format.js';

/** Reconnection delay the client is told to use, ms (the `retry:` field). */
export const SSE_RETRY_MS = 2_000;

/**
 * 2 KiB of comment first: IE's XDomainRequest (the EventSource polyfills'
 * transport there) fires no progress event before 2 KB have arrived, and some
 * proxies buffer the start of a response. Comment lines (`:`) are ignored by
 * every parser. Then `retry:` on its own block.
 */
const PRELUDE = `:${' '.repeat(2048)}\nretry: ${SSE_RETRY_MS}\n\n`;

export const sseFormat: StreamFormat = {
  transport: 'sse',
  headers: [
    'Content-Type', 'text/event-stream; charset=utf-8',
    'Cache-Control', 'no-cache, no-store',
    'X-Content-Type-Options', 'nosniff',
    // nginx buffers proxied responses unless told otherwise.
    'X-Accel-Buffering', 'no',
  ],
  prelude: Buffer.from(PRELUDE),
  // Event JSON has no raw newlines (JSON.stringify escapes them), so one `data:` line carries it whole.
  frame: (id, json) => `id: ${id}\ndata: ${json}\n\n`,
  keepalive: Buffer.from(': keepalive\n\n'),
  resumeId(req: IncomingMessage, query: URLSearchParams): string | undefined {
    const header = req.headers['last-event-id'];
    if (typeof header === 'string' && header !== '') return header.trim();
    // EventSource polyfills that cannot set headers (XDomainRequest) send it in the query instead.
    const value = query.get('lastEventId');
    return value === null || value === '' ? undefined : value;
  },
};
