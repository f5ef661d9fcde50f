/**
 * What a parked request keeps, in bytes (docs/protocol.md §4 step 4): the client's request head (kept for
 * re-asks: method, target, headers), its body (retained for re-asks) and the held response (its timeout
 * answer and the base of every delivery). These are the parts a client or the app can make large; the
 * socket and Node's objects cost about the same for every request and are bounded by the count caps.
 * Strings are counted by length: header text is Latin-1, one byte a character.
 */
import type { ClientRequest } from '../http/client-message.js';
import type { Exchange } from '../forward/exchange.js';
import type { HoldInstruction } from '../forward/instruction.js';
import type { HeldResponse } from '../http/response.js';

/** `: ` and CRLF around each header line, as on the wire. */
const HEADER_LINE_OVERHEAD = 4;
/** ` HTTP/1.1` and CRLF after the request target. */
const REQUEST_LINE_OVERHEAD = 12;

/** The request line and headers as they arrived (Node keeps them twice, but the values are shared strings). */
export function requestHeadBytes(req: ClientRequest): number {
  let bytes = (req.method?.length ?? 0) + (req.url?.length ?? 0) + REQUEST_LINE_OVERHEAD;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i++) bytes += raw[i]!.length;
  return bytes + (raw.length / 2) * HEADER_LINE_OVERHEAD;
}

/** The held response's headers and body. */
export function heldResponseBytes(response: HeldResponse): number {
  let bytes = response.body.length + (response.reason?.length ?? 0);
  for (const name in response.headers) {
    const value = response.headers[name]!;
    if (typeof value === 'string') bytes += name.length + value.length + HEADER_LINE_OVERHEAD;
    else for (const one of value) bytes += name.length + one.length + HEADER_LINE_OVERHEAD;
  }
  return bytes;
}

/** What parking `exchange` under `instruction` keeps: head + retained body + held response. */
export function parkedBytesOf(exchange: Exchange, instruction: HoldInstruction): number {
  return requestHeadBytes(exchange.req) + (exchange.retainedBody()?.length ?? 0) + heldResponseBytes(instruction.timeoutResponse);
}
