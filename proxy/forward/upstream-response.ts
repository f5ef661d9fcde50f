/**
 * What the proxy does with an answer from the app, whether to a client's
 * request or to a re-ask (docs/protocol.md §1.3–1.5, §4.1: "handled exactly
 * like a first answer"): no `Grip-Hold` → streamed to the client as it arrives;
 * `Grip-Hold` → body read (bounded), instruction parsed, request handed to the
 * hold registry.
 */
import type { IncomingMessage } from 'node:http';
import { GRIP_HOLD } from '../../protocol/headers.js';
import { sendError } from '../errors.js';
import type { Exchange } from './exchange.js';
import { endToEndHeaders } from '../http/header-filter.js';
import type { HoldRegistry } from '../holds/hold-registry.js';
import { InstructionError, parseHoldInstruction, type HoldInstruction } from './instruction.js';
import type { ProxyOptions } from '../options.js';
import { BodyTooLargeError, readBody } from '../http/read-body.js';
import { REQUEST_ID_HEADER, requestIdOf, responseRequestId } from '../http/request-id.js';
import type { Repolls } from '../repoll/repolls.js';
import { isResponseClosed } from '../http/response.js';
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
}

/** Handles one app answer for `exchange`; resolves once it is written, streaming, parked or discarded. Never rejects. */
export type UpstreamResponseHandler = (exchange: Exchange, upstreamRes: IncomingMessage) => Promise<void>;

export function createUpstreamResponseHandler({ registry, options, isClosing, repolls, streams }: UpstreamResponseDeps): UpstreamResponseHandler {
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

    let instruction: HoldInstruction | null;
    try {
      instruction = parseHoldInstruction(
        { statusCode: upstreamRes.statusCode ?? 200, statusMessage: upstreamRes.statusMessage, headers: upstreamRes.headers },
        body,
        options,
      );
    } catch (err) {
      if (!(err instanceof InstructionError)) throw err;
      log.warn({ requestId: requestIdOf(exchange.req), reason: err.message, url: exchange.req.url }, 'bad hold instruction');
      sendError(res, 'PROXY_ERR_BAD_INSTRUCTION', `the app sent a hold instruction the proxy cannot obey: ${err.message}`);
      return;
    }
    // Not null: the caller saw Grip-Hold.
    if (instruction!.stream !== undefined) streams.open(exchange, instruction!);
    else registry.hold(exchange, instruction!);
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
      if (upstreamRes.headers[GRIP_HOLD] === undefined) passThrough(exchange, upstreamRes);
      else await hold(exchange, upstreamRes);
    } catch (err) {
      log.error({ err, requestId: requestIdOf(exchange.req) }, 'unexpected error handling an app response');
      upstreamRes.destroy();
      sendError(exchange.res, 'PROXY_ERR_UPSTREAM_UNAVAILABLE', 'internal proxy error');
    }
  };
}
