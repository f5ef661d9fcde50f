/**
 * The bytes of the chat app's streams (docs/protocol.md §10.2). One framing serves the three ways a browser
 * reads a stream, so one published item (`http-stream`, outbox/item-format.ts) reaches them all on one channel:
 *
 *   id: 57
 *   data: {"id":57,"room":"lobby",...}
 *   :<script>_s()</script>
 *   (blank line)
 *
 * To EventSource and XHR streaming this is an SSE event whose last line is a comment. To the forever iframe
 * (`format=iframe`, an HTML document) the lines before the script are a text node and the script hands that
 * text to the page (`_s`, defined in the document's prologue). In the JSON, `<`, `&`, U+2028 and U+2029 are
 * written as `\uXXXX` escapes (the same JSON value): no tag or character reference can start inside the text,
 * so message text stays text in the HTML document too.
 */
import type { ChatEvent } from '../model.js';

/** The comment line that makes a frame run in the forever iframe. */
const IFRAME_CALL = ':<script>_s()</script>\n';

/** JSON whose text is inert in HTML and in a script: `<`, `&`, U+2028, U+2029 as `\u` escapes. */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One event: `id: <event id>`, `data: <the event JSON a poll answer carries>`. JSON has no raw line breaks. */
export function sseEventFrame(event: ChatEvent): string {
  return `id: ${event.id}\ndata: ${scriptSafeJson(event)}\n${IFRAME_CALL}\n`;
}

/** The stream's first frame: the connection ID the client sends back (`cid`) when it reconnects. */
export function sseHelloFrame(connectionId: string): string {
  return `event: hello\ndata: ${scriptSafeJson({ connectionId })}\n${IFRAME_CALL}\n`;
}

/** What a stream's client gets when the proxy ends it out of order or for reading too slowly: reload, reconnect. */
export const SSE_RESYNC = `event: resync\ndata: reconnect\n${IFRAME_CALL}\n`;

/** How a client reads the stream (`format=`): they differ only in the first bytes and the Content-Type. */
export type StreamFormat = 'sse' | 'xhr' | 'iframe';

/**
 * Old browsers hold back the first KiB or two of a response they are still sniffing or buffering (IE's XHR
 * and iframes, old WebKit): 2 KiB of padding before the first frame makes them hand over each frame at once.
 */
const PADDING = ' '.repeat(2048);

/**
 * The iframe document's prologue. `_s` collects the text nodes since the previous frame (a frame's text may
 * arrive as more than one node), removes them and its own script (the document stays small however long it
 * streams), and hands the text to the page that made the iframe, named by the iframe's name. ES5.
 */
const IFRAME_PROLOGUE =
  '<!DOCTYPE html><html><head><meta charset="utf-8"><title>stream</title><script>' +
  'function _s(){var s=document.getElementsByTagName("script"),me=s[s.length-1],n=me.previousSibling,t="",p;' +
  'while(n&&n.nodeType!==1){p=n.previousSibling;if(n.nodeType===3)t=n.nodeValue+t;n.parentNode.removeChild(n);n=p;}' +
  'me.parentNode.removeChild(me);try{parent.CometChat._s(window.name,t);}catch(e){}}' +
  `</script></head><body><!--${PADDING}-->\n`;

/** Content-Type and the bytes before the first frame, per format. */
export const STREAM_FORMATS: Record<StreamFormat, { contentType: string; prologue: string }> = {
  sse: { contentType: 'text/event-stream; charset=utf-8', prologue: '' },
  // text/plain: old IE's XHR hands over text/event-stream at the end only. The padding is an SSE comment.
  xhr: { contentType: 'text/plain; charset=utf-8', prologue: `:${PADDING}\n\n` },
  iframe: { contentType: 'text/html; charset=utf-8', prologue: IFRAME_PROLOGUE },
};
