/**
 * The Bayeux endpoint (docs/bayeux.md), two transports over one dispatcher:
 * `POST /cometd` is `long-polling` (the body is a JSON array of messages, the
 * answer a JSON array of replies); `GET /cometd?jsonp=NAME&message=...` is
 * `callback-polling` (the same array in a query parameter, the answer
 * `NAME([...])` as JavaScript). Either way an idle `/meta/connect` that came
 * through the proxy is answered with a hold instruction whose body is the empty
 * connect reply, in that transport's form: the proxy sends it on timeout and
 * re-asks the same request (same URL, same body) when a hint arrives.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { GRIP_LAST } from '../../protocol/headers.js';
import { clientAddressOf } from '../http/client-address.js';
import { jsonBody } from '../http/json-body.js';
import { BayeuxDispatcher, type BayeuxTransport, type DispatcherOptions, type RequestFacts } from './dispatcher.js';
import { bayeuxHoldHeaders, type BayeuxHoldInput } from './hold.js';
import { JSONP_CONTENT_TYPE, jsonpBody, parseJsonpMessages, parseJsonpRequest } from './jsonp.js';
import { parseEnvelope, type BayeuxReply } from './messages.js';
import type { BayeuxService } from './bayeux-service.js';

export interface BayeuxRouteOptions extends DispatcherOptions {
  bodyMaxBytes: number;
  /** Used when a request has no logger of its own (server/http/request-log.ts gives every request one). */
  logger: Logger;
}

/**
 * CometD clients append the type of a lone meta message to the URL
 * (`appendMessageTypeToURL`, on by default): `/cometd/connect`. The suffix is a
 * hint for logs and proxies only; the messages decide.
 */
const BAYEUX_PATHS = ['/', '/handshake', '/connect', '/subscribe', '/unsubscribe', '/disconnect'];

export function bayeuxRoutes(bayeux: BayeuxService, options: BayeuxRouteOptions): Router {
  const router = Router();
  const dispatcher = new BayeuxDispatcher(bayeux, options);

  /** Runs the messages in the order sent; each is refused or done on its own, as in CometD. */
  async function run(req: Request, body: unknown, transport: BayeuxTransport): Promise<{ replies: BayeuxReply[]; hold: BayeuxHoldInput | undefined }> {
    // The envelope is checked whole before any message runs: a refused request changes nothing.
    const messages = parseEnvelope(body);
    const viaProxy = req.viaProxy === true;
    const facts: RequestFacts = {
      transport,
      // A JSON-P answer can be read by any page that includes the script, so a
      // callback-polling request never acts with the cookie's session (docs/bayeux.md, Security).
      cookieSession: transport === 'callback-polling' ? undefined : req.chatSession,
      viaProxy,
      // Grip-* request headers only ever come from the proxy (it strips clients'), and only count when signed.
      reask: viaProxy && req.headers[GRIP_LAST] !== undefined,
      rateExempt: options.limits.exempt(req),
      clientAddress: clientAddressOf(req),
      lone: messages.length === 1,
      log: req.log ?? options.logger,
    };
    const replies: BayeuxReply[] = [];
    let hold: BayeuxHoldInput | undefined;
    for (const message of messages) {
      const outcome = await dispatcher.handle(message, facts);
      replies.push(...outcome.replies);
      hold = outcome.hold ?? hold;
    }
    return { replies, hold };
  }

  router.post(BAYEUX_PATHS, ...jsonBody(options.bodyMaxBytes), async (req, res) => {
    const { replies, hold } = await run(req, req.body, 'long-polling');
    if (hold !== undefined) res.set(bayeuxHoldHeaders(hold));
    res.json(replies);
  });

  router.get(BAYEUX_PATHS, async (req, res: Response, next: NextFunction) => {
    // Express routes HEAD to GET handlers: a HEAD would run the messages and return nothing. Not found.
    if (req.method === 'HEAD') return next();
    // Checked in this order so a bad callback name is never echoed into JavaScript.
    const jsonp = parseJsonpRequest(req.originalUrl, options.bodyMaxBytes);
    const { replies, hold } = await run(req, parseJsonpMessages(jsonp.messageJson), 'callback-polling');
    if (hold !== undefined) res.set(bayeuxHoldHeaders(hold));
    res.type(JSONP_CONTENT_TYPE).send(jsonpBody(jsonp.callback, replies));
  });

  return router;
}
