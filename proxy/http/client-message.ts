/**
 * What the hold pipeline (holds/*, repoll/*, streams/*, http/response.ts, errors.ts) uses of a client's request
 * and response. Node's `IncomingMessage`/`ServerResponse` satisfy these structurally; so do the client front's
 * light `FrontRequest`/`FrontResponse` (http/front/), which serve leased re-polls without Node's per-request
 * objects (issue 15: node:http's own per-request handling was about 29% of the delivery window).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { HeaderMap } from './header-filter.js';

/** A client request as the pipeline reads it (and rewrites it: `url`, `headers`). */
export interface ClientRequest {
  method?: string | undefined;
  /** The request target; rewritten in place (absolute form to origin form, JSON-P parameter removed). */
  url?: string | undefined;
  /** `'1.0'` or `'1.1'`. */
  httpVersion: string;
  /** Lower-case names; replaced by a compact copy when the request parks (holds/compact-head.ts). */
  headers: IncomingHttpHeaders;
  /** Names and values as they arrived, alternating. */
  rawHeaders: string[];
  /**
   * True when `headers` were built in their final shape without a `delete` (the client front's, http/front/final-headers.ts):
   * V8 keeps them compact, so parking does not copy them (holds/compact-head.ts). Node's requests leave it unset.
   */
  readonly compactHeaders?: boolean;
  /** The client's connection (its addresses); for a request Node parsed through the front, the front's bridge. */
  readonly socket: Socket;
}

/** A client response as the pipeline writes it. */
export interface ClientResponse {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  /** Every byte of the answer handed to the operating system. */
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  /** Bytes written and not yet taken by the kernel (the socket's buffer included). */
  readonly writableLength: number;
  readonly socket: Socket | null;
  statusCode: number;
  writeHead(statusCode: number, statusMessage: string | undefined, headers: HeaderMap | string[]): unknown;
  write(chunk: string | Buffer, encoding?: BufferEncoding): boolean;
  end(): unknown;
  /** Sends the head now (a stream hold with an empty first chunk). */
  flushHeaders(): void;
  destroy(error?: Error): unknown;
  // 'close' (answered or aborted; `writableFinished` tells which), 'finish', 'drain'.
  on(event: string, listener: (...args: any[]) => void): unknown;
  once(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}
