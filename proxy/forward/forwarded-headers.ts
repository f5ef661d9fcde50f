/**
 * The `X-Forwarded-*` headers the app receives (docs/protocol.md §1.2), set by
 * the proxy from what it knows itself, never from what the client wrote (the
 * client's own are stripped by http/header-filter.ts):
 *
 * - `X-Forwarded-For`: the client address (client-address.ts).
 * - `X-Forwarded-Proto`: `http`, the scheme of the proxy's own listener.
 * - `X-Forwarded-Port`: the port the client connected to.
 * - `X-Forwarded-Host`: the `Host` the proxy validated (http/request-host.ts);
 *   absent on an HTTP/1.0 request without one.
 *
 * With `trustForwardedFor` (a load balancer in front, which terminates the
 * client's connection and maybe TLS) the right-most `X-Forwarded-Proto`
 * (`http`/`https`) and `X-Forwarded-Port` that balancer wrote are kept, like its
 * `X-Forwarded-For`; a value that is no scheme or port falls back to our own.
 * `X-Forwarded-Host` stays the Host: the balancer must pass `Host` through.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ClientRequest } from '../http/client-message.js';
import { clientAddressOf } from './client-address.js';

export interface ForwardedValues {
  for: string;
  proto: string;
  port: string;
  host: string | undefined;
}

/** The right-most comma-separated entry of a header (what the nearest peer wrote), trimmed. */
function rightMost(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value.join(',') : value).split(',').at(-1)?.trim();
}

/** Read before the client's forwarding headers are stripped: the trusted values come from them. */
export function forwardedValuesOf(req: ClientRequest, trustForwardedFor: boolean): ForwardedValues {
  const values: ForwardedValues = {
    for: clientAddressOf(req, trustForwardedFor),
    proto: 'http',
    port: String(req.socket.localPort ?? ''),
    host: req.headers.host,
  };
  if (trustForwardedFor) {
    const proto = rightMost(req.headers['x-forwarded-proto'])?.toLowerCase();
    if (proto === 'http' || proto === 'https') values.proto = proto;
    const port = rightMost(req.headers['x-forwarded-port']);
    if (port !== undefined && /^[0-9]{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65_535) values.port = String(Number(port));
  }
  return values;
}

/** Writes the four headers into `headers` (the client request's, which forwarding and re-asks copy). */
export function setForwardedHeaders(headers: IncomingHttpHeaders, values: ForwardedValues): void {
  headers['x-forwarded-for'] = values.for;
  headers['x-forwarded-proto'] = values.proto;
  headers['x-forwarded-port'] = values.port;
  if (values.host === undefined) delete headers['x-forwarded-host'];
  else headers['x-forwarded-host'] = values.host;
}
