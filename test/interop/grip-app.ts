/**
 * A small GRIP app written the way Pushpin's documentation tells people to
 * write one, with the published libraries only: `@fanoutio/serve-grip` as
 * Express middleware, `@fanoutio/grip`'s `Publisher` (through the middleware)
 * to publish, `Publisher.validateGripSig` to check `Grip-Sig`. Nothing from
 * this repository: it is the "software nobody here wrote" our proxy must serve
 * (test/interop/grip-app.test.ts). A fixture, not a test.
 *
 * The app keeps a log of messages on one channel, like Pushpin's long-polling
 * examples: item ids are "1", "2", ... (or any ids `itemId` makes), each item
 * published with `prev-id` = the id before it (`itemId(0)` stands for "nothing
 * yet"), and a poll `GET /messages?last=ID` is answered at once with the items
 * after ID, or held on the channel with `prev-id` = the log's last id.
 */
import express from 'express';
import { Channel, HttpResponseFormat, type Publisher } from '@fanoutio/grip';
import { ServeGrip } from '@fanoutio/serve-grip';

/** The one channel of the app. */
export const CHANNEL = 'messages';

export interface LogItem {
  id: string;
  text: string;
}

export interface GripAppConfig {
  /**
   * A GRIP URL as in Pushpin's docs: the control API base, with `iss` and `key` for publishing (a JWT signed
   * with `key`, our proxy's control secret) and `verify-key` for verifying `Grip-Sig` (the proxy's Grip-Sig key;
   * without it the library would verify with `key`).
   */
  gripUrl: string;
  /** The id of the n-th item (n = 0: before the first). Default `String(n)`. */
  itemId?: (n: number) => string;
  /**
   * Test hook: awaited after a poll decided to hold and before the hold instruction is sent, so a test can
   * publish while the proxy waits for the app's answer (the race GRIP's prev-id exists for).
   */
  beforeHold?: () => Promise<void>;
}

export interface GripApp {
  app: express.Express;
  /** The log, oldest first. */
  readonly log: readonly LogItem[];
  /** The middleware's publisher (what `serveGrip.getPublisher()` returns). */
  publisher: Publisher;
  /** Appends a message and publishes it, as `POST /messages` does. */
  append(text: string): Promise<LogItem>;
  /** Number of poll requests the app answered with a hold instruction. */
  readonly holds: number;
}

export function createGripApp(config: GripAppConfig): GripApp {
  const itemId = config.itemId ?? String;
  const lastId = (log: readonly LogItem[]): string => itemId(log.length);
  const serveGrip = new ServeGrip({ grip: config.gripUrl });
  const publisher = serveGrip.getPublisher();
  const log: LogItem[] = [];
  let holds = 0;

  /**
   * serve-grip 2.0.0 computes `req.grip.isSigned` with the async `validateSig` without awaiting it (a Promise is
   * truthy), so any `Grip-Sig` value counts as signed. `Publisher.validateGripSig` awaits it: use that.
   */
  const signed = async (req: express.Request): Promise<boolean> => {
    const header = req.get('grip-sig') ?? null;
    return (await publisher.validateGripSig(header)).isSigned;
  };

  const append = async (text: string): Promise<LogItem> => {
    const prevId = lastId(log);
    const item: LogItem = { id: itemId(log.length + 1), text };
    // Stored before it is published, so a poll that misses the publish finds it in the log.
    log.push(item);
    const body = JSON.stringify({ items: [item] }) + '\n';
    await publisher.publishHttpResponse(
      CHANNEL,
      new HttpResponseFormat({ headers: { 'Content-Type': 'application/json' }, body }),
      item.id,
      prevId,
    );
    return item;
  };

  const app = express();
  app.use(serveGrip);
  app.use(express.json());

  // Whether the request came through the GRIP proxy, by its signature.
  app.get('/whoami', async (req, res) => {
    res.json({ proxied: req.grip?.isProxied === true, signed: await signed(req) });
  });

  app.get('/messages', async (req, res) => {
    const last = typeof req.query.last === 'string' ? req.query.last : itemId(0);
    // Items after the client's last id (all of them for an id the log does not know).
    const after = log.slice(log.findIndex((item) => item.id === last) + 1);
    // What the client will have once it gets this answer: the hold's prev-id.
    const answeredFrom = lastId(log);
    const isSigned = await signed(req);
    res.set('X-Grip-Signed', String(isSigned));
    if (after.length > 0 || !isSigned) {
      // News, or no proxy to hold the request: answer now (a plain long-poll degrades to a poll).
      res.json({ items: after });
      return;
    }
    // The log may grow while this waits; the hold still names what the app read (the race a proxy must catch).
    await config.beforeHold?.();
    const instruct = res.grip!.startInstruct();
    instruct.addChannel(new Channel(CHANNEL, answeredFrom));
    const timeout = typeof req.query.timeout === 'string' ? Number(req.query.timeout) : undefined;
    instruct.setHoldLongPoll(timeout);
    holds++;
    if (req.query.notModified === '1') {
      // serve-grip turns a held 304 into 200 + `Grip-Status: 304` (a 304 may not carry Grip-* headers).
      res.status(304).end();
      return;
    }
    // The timeout response: what the client gets if nothing is published in time.
    res.set('X-Held', 'yes').json({ items: [] });
  });

  app.post('/messages', async (req, res) => {
    const text = typeof req.body?.text === 'string' ? req.body.text : '';
    res.status(201).json(await append(text));
  });

  return {
    app,
    get log() {
      return log;
    },
    publisher,
    append,
    get holds() {
      return holds;
    },
  };
}
