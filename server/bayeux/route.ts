/**
 * `POST /cometd`: the Bayeux long-polling transport (docs/bayeux.md). The body
 * is a JSON array of messages; the answer is a JSON array of replies (and
 * delivered messages), or, for an idle `/meta/connect` that came through the
 * proxy, a hold instruction whose body is the empty connect reply.
 */
import { Router } from 'express';
import type { Logger } from 'pino';
import { GRIP_LAST } from '../../protocol/headers.js';
import { clientAddressOf } from '../http/client-address.js';
import { jsonBody } from '../http/json-body.js';
import { BayeuxDispatcher, type DispatcherOptions, type RequestFacts } from './dispatcher.js';
import { bayeuxHoldHeaders, type BayeuxHoldInput } from './hold.js';
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

  router.post(BAYEUX_PATHS, ...jsonBody(options.bodyMaxBytes), async (req, res) => {
    // The envelope is checked whole before any message runs: a refused request changes nothing.
    const messages = parseEnvelope(req.body);
    const viaProxy = req.viaProxy === true;
    const facts: RequestFacts = {
      cookieSession: req.chatSession,
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
    // In the order sent; each message is refused or done on its own, as in CometD.
    for (const message of messages) {
      const outcome = await dispatcher.handle(message, facts);
      replies.push(...outcome.replies);
      hold = outcome.hold ?? hold;
    }
    if (hold !== undefined) res.set(bayeuxHoldHeaders(hold));
    res.json(replies);
  });

  return router;
}
