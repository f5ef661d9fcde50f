/**
 * A plain GRIP streaming backend, the kind written for Pushpin, with `@fanoutio/grip` only: `GET /stream/CHANNEL`
 * is held as a stream (`Grip-Hold: stream`) whose first bytes are `open\n`; `?ka=N` adds a `Grip-Keep-Alive` of
 * `: ka\n` every N s (cstring, as `GripInstruct.setKeepAlive` writes it); `GET /poll/CHANNEL` is a response hold
 * (for publish `close` on http-response); `GET /ready` answers 200. No prev-id: Pushpin refuses a stream held with
 * one unless the hold also has a `Grip-Link` (its httpsession.cpp). A fixture (test/interop/grip-stream.test.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Channel, GripInstruct, Publisher } from '@fanoutio/grip';

export interface GripStreamApp {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Stream holds answered. */
  readonly streams: number;
}

export function createGripStreamApp(gripUrl: string): GripStreamApp {
  const publisher = new Publisher(gripUrl);
  let streams = 0;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://app');
      if (url.pathname === '/ready') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ready');
        return;
      }
      const [, kind, channel] = /^\/(stream|poll)\/([a-z0-9-]+)$/.exec(url.pathname) ?? [];
      if (req.method !== 'GET' || channel === undefined) {
        res.writeHead(404).end();
        return;
      }
      if (!(await publisher.validateGripSig((req.headers['grip-sig'] as string | undefined) ?? null)).isSigned) {
        res.writeHead(403).end('only through the proxy');
        return;
      }
      const instruct = new GripInstruct(new Channel(channel));
      if (kind === 'stream') {
        streams++;
        instruct.setHoldStream();
        const ka = url.searchParams.get('ka');
        if (ka !== null) instruct.setKeepAlive(': ka\n', Number(ka));
      } else {
        instruct.setHoldLongPoll(20);
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'x-app': 'grip-stream-app', ...instruct.toHeaders() });
      res.end(kind === 'stream' ? 'open\n' : 'timeout\n');
    })().catch((err: unknown) => res.destroy(err as Error));
  };
  return {
    handle,
    get streams() {
      return streams;
    },
  };
}
