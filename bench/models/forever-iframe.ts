/**
 * The forever-iframe baseline's wire format: an HTML document that never ends,
 * one `<script>parent.comet(EVENT)</script>` per chat event, run by the browser
 * as it arrives (the pre-XHR-streaming Comet of 2006). Served by the
 * event-driven core (bench/models/event-driven.ts) at
 * `GET /api/stream?rooms=...&transport=iframe`; a reconnect resumes from the
 * cursors the parent page kept.
 */
import type { StreamFormat } from './event-driven/stream-format.js';

/**
 * Old IE and Safari render (and so run scripts of) nothing of a streamed
 * document until 256 B / 1 KiB have arrived: 1 KiB of comment after the head.
 * The charset sits in the head so it is inside the first 1024 bytes the
 * browser sniffs.
 */
const PRELUDE =
  '<!DOCTYPE html><html><head><meta charset="utf-8"><title>comet</title></head><body>' +
  `<!--${' '.repeat(1024)}-->\n`;

const UNSAFE_IN_SCRIPT = /[<\u2028\u2029]/g;
const ESCAPES: Record<string, string> = { '<': '\\u003c', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/**
 * Event JSON made safe inside `<script>`: `<` becomes `\u003c` so chat text
 * `</script>` or `<!--` cannot end or comment out the script (HTML §4.12.1.3),
 * and U+2028/U+2029, legal in JSON, are escaped because pre-ES2019 engines
 * reject them in string literals. The value the script sees is unchanged.
 */
export function scriptSafeJson(json: string): string {
  return json.replace(UNSAFE_IN_SCRIPT, (c) => ESCAPES[c]!);
}

export const foreverIframeFormat: StreamFormat = {
  transport: 'iframe',
  headers: [
    'Content-Type', 'text/html; charset=utf-8',
    'Cache-Control', 'no-cache, no-store',
    'X-Content-Type-Options', 'nosniff',
    'X-Accel-Buffering', 'no',
  ],
  prelude: Buffer.from(PRELUDE),
  frame: (_id, json) => `<script>parent.comet(${scriptSafeJson(json)})</script>\n`,
  // A call rather than a comment: the parent page sees the stream is alive and can time out a dead one.
  keepalive: Buffer.from('<script>parent.comet(null)</script>\n'),
};
