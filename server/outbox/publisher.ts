/**
 * Publishing to the proxy's control API (docs/protocol.md §7.1), or to
 * Pushpin's publish endpoint, which takes the same items (§12); and closing
 * connection IDs (`POST /close/`, §7.3) when a session ends.
 */
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { CloseItem, ControlResult, ItemsBody, PublishItem } from '../../protocol/control-api.js';

/** Where the relay sends outbox items. Resolves when the proxy accepted every item; rejects otherwise. */
export interface Publisher {
  publish(items: PublishItem[]): Promise<ControlResult>;
  /**
   * `POST /close/` (docs/protocol.md §7.3): answers the IDs' parked requests on every proxy. Optional: a
   * publisher without it (in-process models) has nothing parked to close, and the relay drops close rows.
   */
  closeConnections?(items: CloseItem[]): Promise<ControlResult>;
  /** Releases sockets. Further publishes fail. */
  close(): void;
}

/** A publish the proxy did not accept: network error, timeout or non-2xx status. */
export class PublishError extends Error {
  override name = 'PublishError';
  readonly code = 'APP_ERR_PUBLISH_FAILED';

  constructor(
    message: string,
    /** HTTP status when the proxy answered, undefined for network errors and timeouts. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface HttpPublisherOptions {
  /** Control API base URL, e.g. `http://127.0.0.1:5561` (no trailing slash needed). */
  controlUrl: string;
  /** The control secret (not the Grip-Sig key), sent as `Authorization: Bearer <secret>`. */
  secret: string;
  /** Whole-request deadline, ms. */
  timeoutMs: number;
  /** Told once when the control API has no `/close/` (Pushpin). Default: silent. */
  logger?: Logger;
}

/** Longest control API answer read, bytes (it is a small JSON object; the cap guards memory). */
const MAX_ANSWER_BYTES = 64 * 1024;

/** Pushpin's whole answer to an accepted `POST /publish/` (text/plain, with or without a final newline). */
const PUSHPIN_ACCEPTED = 'Published';

const COUNT_KEYS = ['delivered', 'queued', 'dropped', 'reasked'] as const;

/**
 * Reads a 2xx answer. Our proxy answers JSON counts (docs/protocol.md §7), and
 * only a whole, well-formed count object is taken from it. Pushpin (and other
 * GRIP proxies built on it) answers the text `Published` and counts nothing:
 * accepted, with zero counts. Anything else (an HTML page, `{}`, a truncated
 * body) is refused, so a control URL that points at the wrong server fails
 * loudly and the relay keeps its rows instead of deleting them as published.
 */
function toControlResult(text: string): ControlResult | null {
  if (text.trim() === PUSHPIN_ACCEPTED) return { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const o = parsed as Record<string, unknown>;
  if (!COUNT_KEYS.every((k) => Number.isSafeInteger(o[k]) && (o[k] as number) >= 0)) return null;
  return { delivered: o.delivered as number, queued: o.queued as number, dropped: o.dropped as number, reasked: o.reasked as number };
}

const NOTHING: ControlResult = { delivered: 0, queued: 0, dropped: 0, reasked: 0 };

/** `POST {controlUrl}/publish/` (and `/close/`) over HTTP(S), one keep-alive agent per publisher. */
export class HttpPublisher implements Publisher {
  private readonly url: URL;
  private readonly closeUrl: URL;
  private readonly agent: http.Agent;
  private closed = false;
  private closeUnsupported = false;

  constructor(private readonly options: HttpPublisherOptions) {
    const base = options.controlUrl.replace(/\/+$/, '');
    this.url = new URL(`${base}/publish/`);
    this.closeUrl = new URL(`${base}/close/`);
    const secure = this.url.protocol === 'https:';
    // Own agent, so close() can drop its idle sockets instead of leaving them to the global one.
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  publish(items: PublishItem[]): Promise<ControlResult> {
    return this.post(this.url, items);
  }

  /**
   * Pushpin has no `/close/` (404): the call is then skipped for good, with one warning, rather than retried
   * forever and holding up the outbox. An ended session's polls still end: its leave events reach them.
   */
  async closeConnections(items: CloseItem[]): Promise<ControlResult> {
    if (this.closeUnsupported) return NOTHING;
    try {
      return await this.post(this.closeUrl, items);
    } catch (err) {
      if (!(err instanceof PublishError) || err.status !== 404) throw err;
      this.closeUnsupported = true;
      this.options.logger?.warn({ url: this.closeUrl.href }, 'the control API has no /close/ (Pushpin?); ended sessions\' connection IDs are not closed');
      return NOTHING;
    }
  }

  private post(url: URL, items: PublishItem[] | CloseItem[]): Promise<ControlResult> {
    if (this.closed) return Promise.reject(new PublishError('publisher is closed'));
    const body = Buffer.from(JSON.stringify({ items } satisfies ItemsBody<PublishItem | CloseItem>));
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<ControlResult>((resolve, reject) => {
      const req = transport.request(url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': body.length,
          Authorization: `Bearer ${this.options.secret}`,
        },
      });
      const timer = setTimeout(() => {
        req.destroy(new PublishError(`publish timed out after ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      const fail = (err: unknown): void => {
        clearTimeout(timer);
        reject(err instanceof PublishError ? err : new PublishError(`publish failed: ${(err as Error).message}`, undefined, { cause: err }));
      };
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
        });
        res.on('error', fail);
        // The proxy (or the network) dropped the connection before the answer ended.
        res.on('close', () => {
          if (!res.complete) fail(new PublishError('control API connection closed before the answer ended'));
        });
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            const result = toControlResult(text);
            if (result !== null) resolve(result);
            else reject(new PublishError(`control API answered ${status} with neither counts nor "Published": ${text.slice(0, 200)}`, status));
          } else {
            reject(new PublishError(`control API answered ${status}: ${text.slice(0, 200)}`, status));
          }
        });
      });
      req.end(body);
    });
  }

  close(): void {
    this.closed = true;
    this.agent.destroy();
  }
}
