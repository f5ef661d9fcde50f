/**
 * A GRIP app that serves server-sent events through stream holds, in the resume pattern of docs/protocol.md
 * §14.6, with `@fanoutio/grip` only: it keeps a log per channel (ids 1, 2, ...; "0" stands for nothing yet),
 * answers `GET /events/CHANNEL` with the events after the client's `Last-Event-ID` as the stream's first bytes,
 * and holds it with `Grip-Channel: CHANNEL; prev-id=<last id sent>`, a keep-alive comment and a resync event.
 * Each new entry is logged first, then published as an `http-stream` item with `id` = n and `prev-id` = n-1.
 * A fixture, not a test (test/interop/sse-resume.test.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Publisher } from '@fanoutio/grip';

export interface SseLogAppConfig {
  /** GRIP URL of the control API (`iss` + `key`: the control secret; `verify-key`: the Grip-Sig key). */
  gripUrl: string;
  /** `Grip-Keep-Alive` timeout, s. */
  keepAliveS?: number;
}

export interface SseLogApp {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Logs the next entry of `channel` and publishes it; a publish that fails (proxy down) is left to the log. */
  append(channel: string, text: string): Promise<{ id: string; published: boolean }>;
  /** Stream requests answered, and how many came with a `Last-Event-ID`. */
  readonly opened: number;
  readonly resumed: number;
}

/** One event in the text/event-stream format. */
export function sseEvent(id: string, text: string): string {
  return `id: ${id}\ndata: ${text}\n\n`;
}

export function createSseLogApp(config: SseLogAppConfig): SseLogApp {
  const publisher = new Publisher(config.gripUrl);
  const logs = new Map<string, string[]>();
  let opened = 0;
  let resumed = 0;
  const logOf = (channel: string): string[] => {
    let log = logs.get(channel);
    if (log === undefined) logs.set(channel, (log = []));
    return log;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://app');
      const channel = /^\/events\/([a-z]+)$/.exec(url.pathname)?.[1];
      if (req.method !== 'GET' || channel === undefined) {
        res.writeHead(404).end();
        return;
      }
      if (!(await publisher.validateGripSig((req.headers['grip-sig'] as string | undefined) ?? null)).isSigned) {
        res.writeHead(403).end('streams only through the proxy');
        return;
      }
      opened++;
      // The client's position: the id of the last event it has (EventSource sends it back on reconnect).
      const lastEventId = req.headers['last-event-id'] as string | undefined;
      if (lastEventId !== undefined) resumed++;
      const position = /^\d+$/.test(lastEventId ?? '') ? Number(lastEventId) : 0;
      const log = logOf(channel);
      const missed = log.slice(position).map((text, i) => sseEvent(String(position + i + 1), text));
      res.writeHead(200, {
        'Content-Type': 'text/event-stream',
        'Cache-Control': 'no-cache',
        'Grip-Hold': 'stream',
        // The stream is at the last event it was sent: a publish that does not follow it ends the stream.
        'Grip-Channel': `${channel}; prev-id=${log.length}`,
        'Grip-Keep-Alive': `:\\n\\n; format=cstring; timeout=${config.keepAliveS ?? 20}`,
        'Grip-Stream-Resync': 'event: resync\\ndata: reconnect\\n\\n; format=cstring',
      });
      res.end(missed.join(''));
    })().catch((err: unknown) => res.destroy(err as Error));
  };

  return {
    handle,
    async append(channel, text) {
      const log = logOf(channel);
      // Logged before it is published, so a stream opened meanwhile finds it in its first bytes.
      log.push(text);
      const id = String(log.length);
      try {
        await publisher.publishHttpStream(channel, sseEvent(id, text), id, String(log.length - 1));
        return { id, published: true };
      } catch {
        return { id, published: false };
      }
    },
    get opened() {
      return opened;
    },
    get resumed() {
      return resumed;
    },
  };
}
