/**
 * `nchan-long-poll`: Nchan's long-poll subscriber, `GET <clientUrl>/sub/<room>`.
 * A 200 is one message (its body is the stamp text) or, with
 * `nchan_longpoll_multipart_response on` (bench/models/nchan.ts) and several
 * messages waiting, a `multipart/mixed` body with one part per message, in
 * order: like our servers' batched answers, a subscriber that fell behind
 * catches up in one request instead of one per message. The client resumes from
 * it by sending its `Last-Modified` back as `If-Modified-Since` and its `Etag`
 * as `If-None-Match`, which Nchan answers with the next message, in order.
 * 408 (or 304) is the hold timeout: poll again from the same point. The first
 * request has neither header, so it waits for the next message published; the
 * lab subscribes before the first publish, so that is seq 1.
 */
import { RETRY_MIN_MS, Subscriber } from './subscriber.js';

/** A timeout answer sooner than this is not a hold timeout: pause a little rather than spin. */
const QUICK_TIMEOUT_MS = 100;

export class NchanLongPollSubscriber extends Subscriber {
  private lastModified: string | undefined;
  private etag: string | undefined;

  /** Nothing to set up: Nchan channels need no session or join. */
  async setup(_deadline: number): Promise<void> {
    this.ready = true;
  }

  protected async round(): Promise<void> {
    const headers: Record<string, string> = {};
    if (this.lastModified !== undefined) headers['if-modified-since'] = this.lastModified;
    if (this.etag !== undefined) headers['if-none-match'] = this.etag;
    const sentAt = performance.now();
    let answer;
    try {
      answer = await this.http.request(`/sub/${encodeURIComponent(this.room)}`, { headers, onSent: this.sent });
    } catch (err) {
      await this.failed(err);
      return;
    }
    if (answer.status === 200) {
      const boundary = multipartBoundary(answer.headers['content-type']);
      if (boundary === null) this.sink.deliver(this.record, answer.body);
      else for (const part of multipartBodies(answer.body, boundary)) this.sink.deliver(this.record, part);
      const lastModified = answer.headers['last-modified'];
      const etag = answer.headers.etag;
      if (typeof lastModified === 'string') this.lastModified = lastModified;
      if (typeof etag === 'string') this.etag = etag;
      this.succeeded();
      await this.afterMessages();
      return;
    }
    if (answer.status === 408 || answer.status === 304) {
      this.succeeded();
      if (performance.now() - sentAt < QUICK_TIMEOUT_MS) await this.pause(RETRY_MIN_MS);
      return;
    }
    await this.badStatus(answer.status);
  }
}

/** The boundary of a `multipart/mixed` content type, or null for any other type. */
export function multipartBoundary(contentType: unknown): string | null {
  if (typeof contentType !== 'string' || !/^multipart\/mixed\s*;/i.test(contentType)) return null;
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match ? (match[1] ?? match[2] ?? null) : null;
}

/**
 * The bodies of a `multipart/mixed` message (RFC 2046 §5.1.1), in order: each part's
 * headers end at the first blank line, its body at the CRLF before the next delimiter.
 */
export function multipartBodies(body: string, boundary: string): string[] {
  const delimiter = `--${boundary}`;
  const out: string[] = [];
  // Everything before the first delimiter is preamble; "--" right after a delimiter closes the message.
  const sections = body.split(delimiter).slice(1);
  for (const section of sections) {
    if (section.startsWith('--')) break;
    const headersEnd = section.indexOf('\r\n\r\n');
    if (headersEnd < 0) continue;
    let part = section.slice(headersEnd + 4);
    if (part.endsWith('\r\n')) part = part.slice(0, -2);
    out.push(part);
  }
  return out;
}
