/**
 * A GRIP app in the pattern Pushpin's re-ask ("retry") is built for, with
 * `@fanoutio/grip` only: it keeps a log per channel and holds a poll
 * `GET /log/CHANNEL?last=ID` with `Grip-Channel: CHANNEL; prev-id=ID`, the
 * *client's* position. A re-ask (a request carrying `Grip-Last`) is read as
 * "the client is at `last-id`": Pushpin sends the prev-id the request was held
 * with (fastly/pushpin src/handler/httpsession.cpp, `doFinish(retry)`), and
 * Pushpin itself lets it supersede a position in the query (its auto-share
 * key, src/handler/handlerengine.cpp). Re-asks are answered slowly, as a busy
 * backend would. A fixture, not a test (test/interop/grip-last.test.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Channel, GripInstruct, Publisher } from '@fanoutio/grip';

export interface LogEntry {
  id: string;
  text: string;
}

export interface GripLastAppConfig {
  /** GRIP URL of the control API (`iss` + `key`: the control secret; `verify-key`: the Grip-Sig key). */
  gripUrl: string;
  /** How long a re-ask waits before the app reads its log and answers, ms. */
  reaskDelayMs: number;
}

export interface GripLastApp {
  /** The request listener, for an `http.Server` the test owns. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Appends entries n+1, n+2, ... to `channel`'s log (ids "1", "2", ...; "0" stands for nothing yet). */
  log(channel: string, texts: readonly string[]): LogEntry[];
  /** Publishes a logged entry with `id` = n and `prev-id` = n-1, as the app's publisher does. */
  publish(channel: string, entry: LogEntry): Promise<void>;
  /** Re-asks received. */
  readonly reasks: number;
}

/** `name; last-id=ID, ...` (one header or several joined by Node with ", ") as channel -> id. */
function parseGripLast(header: string | undefined): Map<string, string> {
  const ids = new Map<string, string>();
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.split(';').map((s) => s.trim());
    const lastId = params.find((p) => p.startsWith('last-id='))?.slice('last-id='.length);
    if (name && lastId !== undefined) ids.set(name, lastId);
  }
  return ids;
}

export function createGripLastApp(config: GripLastAppConfig): GripLastApp {
  const publisher = new Publisher(config.gripUrl);
  const logs = new Map<string, LogEntry[]>();
  let reasks = 0;
  const logOf = (channel: string): LogEntry[] => {
    let log = logs.get(channel);
    if (log === undefined) logs.set(channel, (log = []));
    return log;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://app');
      const channel = /^\/log\/([a-z]+)$/.exec(url.pathname)?.[1];
      if (req.method !== 'GET' || channel === undefined) {
        res.writeHead(404).end();
        return;
      }
      const signed = (await publisher.validateGripSig((req.headers['grip-sig'] as string | undefined) ?? null)).isSigned;
      const lastIds = parseGripLast(req.headers['grip-last'] as string | undefined);
      const reask = signed && lastIds.size > 0;
      if (reask) {
        reasks++;
        await new Promise((resolve) => setTimeout(resolve, config.reaskDelayMs));
      }
      // The client's position: Grip-Last on a re-ask, else its own cursor. Ids are 1, 2, ... ("0": nothing yet).
      const position = (reask ? lastIds.get(channel) : undefined) ?? url.searchParams.get('last') ?? '0';
      const after = logOf(channel).slice(Number(position));
      res.setHeader('content-type', 'application/json');
      if (after.length > 0 || !signed) {
        res.end(JSON.stringify({ items: after }));
        return;
      }
      const instruct = new GripInstruct(new Channel(channel, position));
      instruct.setHoldLongPoll(20);
      for (const [name, value] of Object.entries(instruct.toHeaders())) res.setHeader(name, value);
      res.end(JSON.stringify({ items: [] }));
    })().catch((err: unknown) => res.destroy(err as Error));
  };

  return {
    handle,
    log(channel, texts) {
      const log = logOf(channel);
      // Stored before they are published, so a poll that misses a publish finds them in the log.
      return texts.map((text) => {
        const entry: LogEntry = { id: String(log.length + 1), text };
        log.push(entry);
        return entry;
      });
    },
    publish: (channel, entry) =>
      publisher.publishHttpResponse(channel, JSON.stringify({ items: [entry] }), entry.id, String(Number(entry.id) - 1)),
    get reasks() {
      return reasks;
    },
  };
}
