/**
 * A request the client front parsed and serves without Node (http/front/client-front.ts): the part of
 * `IncomingMessage` the hold pipeline reads (`ClientRequest`), one shape for every request, nothing else. It has
 * no body and emits nothing: the front only serves bodiless requests, and their end is their response's.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { ClientRequest } from '../client-message.js';
import type { RequestHead } from './request-head.js';

export class FrontRequest implements ClientRequest {
  method: string;
  url: string;
  httpVersion: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** Set once `headers` are the final ones (final-headers.ts), built without a `delete`: parking need not copy them. */
  compactHeaders = false;
  readonly complete = true;

  constructor(
    head: Pick<RequestHead, 'method' | 'url' | 'httpVersion' | 'rawHeaders'> & { headers: IncomingHttpHeaders },
    readonly socket: Socket,
  ) {
    this.method = head.method;
    this.url = head.url;
    this.httpVersion = head.httpVersion;
    this.headers = head.headers;
    this.rawHeaders = head.rawHeaders;
  }
}
