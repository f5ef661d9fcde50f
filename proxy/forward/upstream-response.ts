/**
 * What the proxy does with an answer from the app, whether to a client's
 * request or to a re-ask (docs/protocol.md §1.3–1.5, §4.1: "handled exactly
 * like a first answer"): no instruction → streamed to the client as it arrives
 * (read whole and wrapped for JSON-P, http/jsonp.ts); `Grip-Hold`, an
 * `application/grip-instruct` body or a `Grip-Link` → body read (bounded),
 * instruction parsed, request handed to the hold registry (or, with no hold,
 * answered with the response it describes).
 */
import type { IncomingMessage } from 'node:http';
import { GRIP_HOLD, GRIP_LINK } from '../../protocol/headers.js';
import { sendError } from '../errors.js';
import type { Exchange } from './exchange.js';
import { endToEndHeaders } from '../http/header-filter.js';
import type { HoldRegistry } from '../holds/hold-registry.js';
import { InstructionError, parseHoldInstruction, type HoldInstruction, type UpstreamHead } from './instruction.js';
import { hasNextLink } from './grip-extras.js';
import { isGripInstruct, translateGripInstruct } from './grip-instruct.js';
import { jsonpOf } from '../http/jsonp.js';
import type { ProxyOptions } from '../options.js';
import { BodyTooLargeError, readBody } from '../http/read-body.js';
import { REQUEST_ID_HEADER, requestIdOf, responseRequestId } from '../http/request-id.js';
import type { Repolls } from '../repoll/repolls.js';
import { isResponseClosed, writeResponse, type HeldResponse } from '../http/response.js';
import { relayWithReadAhead } from './read-ahead.js';
import type { StreamRegistry } from '../streams/stream-registry.js';

export interface UpstreamResponseDeps {
  registry: HoldRegistry;
  options: Pick<ProxyOptions, 'heldResponseMaxBytes' | 'responseBufferMaxBytes' | 'defaultHoldTimeoutMs' | 'minHoldTimeoutMs' | 'maxHoldTimeoutMs' | 'logger'>;
  /** True once the proxy is shutting down: pass-through answers then close their connection. */
  isClosing: () => boolean;
  /** Takes the leases the app grants (`Grip-Lease`); null without a lease key. */
  repolls?: Repolls | null;
  /** Opens `Grip-Hold: stream` holds (docs/protocol.md §14). */
  streams: Pick<StreamRegistry, 'open'>;
  /**
   * The exchange a first answer's response hold is parked with: the same one, or one the client front took over
   * from node:http (proxy.ts `adoptHold`). Absent: the same one.
   */
  adoptHold?: (exchange: Exchange) => Exchange;
}

/** Handles one app answer for `exchange`; resolves once it is written, streaming, parked or discarded. Never rejects. */
export type UpstreamResponseHandler = (exchange: Exchange, upstreamRes: IncomingMessage) => Promise<void>;

export function createUpstreamResponseHandler({ registry, options, isClosing, repolls, streams, adoptHold }: UpstreamResponseDeps): UpstreamResponseHandler {
  const log = options.logger;

  function passThrough(exchange: Exchange, upstreamRes: IncomingMessage): void {
    const { res } = exchange;
    const headers = endToEndHeaders(upstreamRes.headers);
    if (isClosing()) headers.connection = 'close';
    const requestId = responseRequestId(res);
    if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
    try {
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, headers);
    } catch (err) {
      log.warn({ err, requestId: requestIdOf(exchange.req) }, 'app response headers could not be written to the client');
      upstreamRes.destroy();
      res.destroy();
      return;
    }
    // Streamed: each chunk reaches the client as the app sends it, and a slow client's share is read ahead
    // (bounded) so the app's socket is not held for it (read-ahead.ts). Both sides are destroyed if either
    // fails, so a cut-off app answer reaches the client as a cut-off response, never as a complete one.
    relayWithReadAhead(upstreamRes, res, options.responseBufferMaxBytes);
    upstreamRes.on('error', (err) => {
      if (!res.destroyed) log.debug({ err }, 'pass-through response cut short');
      res.destroy();
    });
    upstreamRes.on('close', () => {
      if (!upstreamRes.complete && !res.destroyed) {
        log.debug('pass-through response cut short: the app connection closed mid-answer');
        res.destroy();
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) upstreamRes.destroy();
    });
  }

  async function hold(exchange: Exchange, upstreamRes: IncomingMessage): Promise<void> {
    const { res } = exchange;
    let body: Buffer;
    try {
      body = await readBody(upstreamRes, options.heldResponseMaxBytes);
    } catch (err) {
      upstreamRes.destroy();
      if (err instanceof BodyTooLargeError) {
        log.warn({ requestId: requestIdOf(exchange.req), maxBytes: options.heldResponseMaxBytes }, 'bad hold instruction: held response too large');
        sendError(res, 'PROXY_ERR_BAD_INSTRUCTION', `held response body exceeds ${options.heldResponseMaxBytes} bytes`);
      } else {
        log.warn({ err, requestId: requestIdOf(exchange.req) }, 'app connection failed while sending a held response');
        sendError(res, 'PROXY_ERR_UPSTREAM_UNAVAILABLE', 'the app connection failed');
      }
      return;
    }
    if (isResponseClosed(res)) return; // client went away while the body was read
    exchange.releaseUpstream();

    let head: UpstreamHead = { statusCode: upstreamRes.statusCode ?? 200, headers: upstreamRes.headers };
    if (upstreamRes.statusMessage) head.statusMessage = upstreamRes.statusMessage;
    let instruction: HoldInstruction | null;
    try {
      // The JSON form is read into the header form: one parser, the same checks (grip-instruct.ts).
      if (isGripInstruct(head.headers)) ({ head, body } = translateGripInstruct(head, body));
      instruction = parseHoldInstruction(head, body, options);
      if (instruction === null && hasNextLink(head.headers)) {
        throw new InstructionError('Grip-Link rel=next without Grip-Hold (paged streaming) is not supported', 'PROXY_ERR_UNSUPPORTED_INSTRUCTION');
      }
      if (instruction?.stream !== undefined && jsonpOf(res) !== undefined) {
        // A script is one complete answer: chunks appended to it would never run (docs/protocol.md §14.1).
        throw new InstructionError('a stream hold cannot answer a JSON-P request', 'PROXY_ERR_UNSUPPORTED_INSTRUCTION');
      }
    } catch (err) {
      if (!(err instanceof InstructionError)) throw err;
      log.warn({ requestId: requestIdOf(exchange.req), reason: err.message, code: err.code, url: exchange.req.url }, 'bad hold instruction');
      sendError(res, err.code, `the app sent a hold instruction the proxy cannot obey: ${err.message}`);
      return;
    }
    if (instruction === null) {
      // A grip-instruct answer without `hold`, or Grip-* headers without Grip-Hold: a plain answer to the client.
      const plain: HeldResponse = { code: head.statusCode, headers: endToEndHeaders(head.headers, { dropLength: true }), body };
      if (head.statusMessage) plain.reason = head.statusMessage;
      writeResponse(res, plain, isClosing() ? { connection: 'close' } : {});
      return;
    }
    if (instruction.stream !== undefined) streams.open(exchange, instruction);
    else registry.hold(adoptHold === undefined ? exchange : adoptHold(exchange), instruction);
  }

  /** A pass-through answer to a JSON-P request: read whole (bounded), then written wrapped (http/jsonp.ts). */
  async function passThroughJsonp(exchange: Exchange, upstreamRes: IncomingMessage): Promise<void> {
    const { res } = exchange;
    let body: Buffer;
    try {
      body = await readBody(upstreamRes, options.heldResponseMaxBytes);
    } catch (err) {
      upstreamRes.destroy();
      log.warn({ err, requestId: requestIdOf(exchange.req) }, 'app answer to a JSON-P request too large or cut short');
      sendError(res, 'PROXY_ERR_UPSTREAM_UNAVAILABLE', `the app answer could not be read whole for JSON-P (at most ${options.heldResponseMaxBytes} bytes)`);
      return;
    }
    exchange.releaseUpstream();
    const response: HeldResponse = { code: upstreamRes.statusCode ?? 502, headers: endToEndHeaders(upstreamRes.headers, { dropLength: true }), body };
    if (upstreamRes.statusMessage) response.reason = upstreamRes.statusMessage;
    writeResponse(res, response, isClosing() ? { connection: 'close' } : {});
  }

  /** Does the answer carry anything for the proxy: a hold, a JSON instruction, or a link (refused without a hold)? */
  function isInstruction(headers: IncomingMessage['headers']): boolean {
    return headers[GRIP_HOLD] !== undefined || headers[GRIP_LINK] !== undefined || isGripInstruct(headers);
  }

  return async (exchange, upstreamRes) => {
    try {
      if (isResponseClosed(exchange.res)) {
        // The client left (or was answered at shutdown): nobody to answer, free the app's socket.
        upstreamRes.resume();
        return;
      }
      // Before the answer goes out or parks: the client's next poll may be answered by its lease.
      repolls?.granted(exchange, upstreamRes.headers);
      if (isInstruction(upstreamRes.headers)) await hold(exchange, upstreamRes);
      else if (jsonpOf(exchange.res) !== undefined) await passThroughJsonp(exchange, upstreamRes);
      else passThrough(exchange, upstreamRes);
    } catch (err) {
      log.error({ err, requestId: requestIdOf(exchange.req) }, 'unexpected error handling an app response');
      upstreamRes.destroy();
      sendError(exchange.res, 'PROXY_ERR_UPSTREAM_UNAVAILABLE', 'internal proxy error');
    }
  };
}
