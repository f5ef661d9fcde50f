/**
 * The headers a request the client front serves keeps (a leased re-poll, parked with them for a re-ask), built in
 * one object in their final shape. On node:http's path the same headers are reached in four steps on one object:
 * the request id written in (http/request-id.ts), the `Grip-*`, forwarding and hop-by-hop headers deleted
 * (http/header-filter.ts `stripRequestHeaders`), `X-Forwarded-For` added (repoll/repolls.ts), and a compact copy
 * made when it parks (holds/compact-head.ts), because a `delete` turns V8's object into a hash table. Here no
 * header is deleted, so there is no hash table to copy (issue 15: ~500 B allocated and a copy per re-poll).
 * Same names, values and order as those steps give: test/proxy/front-final-headers.test.ts compares them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { connectionTokens, isHopByHopHeader, isProxyOwnedRequestHeader } from '../header-filter.js';
import { REQUEST_ID_HEADER } from '../request-id.js';

/**
 * `headers` (as parsed) with `requestId` in `X-Request-Id` (in place of the client's, or last) and without the
 * headers forwarding removes, then `X-Forwarded-For: forwardedFor`. `forged` counts the proxy-owned headers left out.
 */
export function finalRequestHeaders(headers: IncomingHttpHeaders, requestId: string, forwardedFor: string, forged: { count: number }): IncomingHttpHeaders {
  const named = connectionTokens(headers);
  const out: IncomingHttpHeaders = {};
  let owned = 0;
  for (const name in headers) {
    if (name === REQUEST_ID_HEADER) out[name] = requestId;
    else if (isProxyOwnedRequestHeader(name)) owned++;
    else if ((isHopByHopHeader(name) && name !== 'transfer-encoding') || named.has(name)) continue;
    else out[name] = headers[name];
  }
  if (headers[REQUEST_ID_HEADER] === undefined) out[REQUEST_ID_HEADER] = requestId;
  out['x-forwarded-for'] = forwardedFor;
  forged.count = owned;
  return out;
}
