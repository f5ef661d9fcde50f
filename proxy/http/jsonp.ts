/**
 * JSON-P for legacy browsers (docs/protocol.md §1.9), as Pushpin's `jsonp`
 * route options do it (fastly/pushpin src/proxy/requestsession.cpp): a GET
 * with `?callback=NAME` (the parameter is `jsonpCallbackParam`) is forwarded
 * without that parameter, and whatever answers it (pass-through, held, timeout,
 * delivered item, the proxy's own errors) reaches the client as script:
 *
 * - `extended` (Pushpin's default): `200`, `/**\/NAME({"code": C, "reason": R, "headers": {...}, "body": "..."});\n`
 * - `basic`: `200`, `/**\/NAME(BODY);\n` (one trailing newline of BODY dropped).
 *
 * Unlike Pushpin, NAME must be a JavaScript identifier path (`cb`, `jQuery123_456`, `a.b`): anything else is
 * refused before forwarding, so no request can make the proxy serve script of its choosing.
 */
import type { ClientRequest, ClientResponse } from './client-message.js';
import type { HeaderMap } from './header-filter.js';
import type { HeldResponse } from './response.js';

export type JsonpMode = 'extended' | 'basic';

export interface JsonpWrap {
  callback: string;
  mode: JsonpMode;
}

/** A JavaScript identifier path, ASCII only: what JSON-P libraries generate. */
const CALLBACK_PATTERN = /^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*$/;
export const MAX_CALLBACK_CHARS = 128;
/** Headers of the wrapped answer copied onto the wrapping one (Pushpin mirrors these). */
const MIRRORED = ['cache-control'];

const wraps = new WeakMap<ClientResponse, JsonpWrap>();

/** The wrap `res` is answered with, if its request asked for JSON-P. */
export function jsonpOf(res: ClientResponse): JsonpWrap | undefined {
  return wraps.get(res);
}

export type JsonpRequest = { kind: 'none' } | { kind: 'wrap'; wrap: JsonpWrap } | { kind: 'bad'; message: string };

/**
 * Reads the callback of a client request. With one, `req.url` loses the parameter (the app sees a plain request,
 * as behind Pushpin) and `res` is marked for wrapping. Only GET requests are JSON-P (a script tag can do nothing else).
 */
export function takeJsonpRequest(req: ClientRequest, res: ClientResponse, param: string, mode: JsonpMode): JsonpRequest {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  if (req.method !== 'GET' || q === -1) return { kind: 'none' };
  const query = new URLSearchParams(url.slice(q + 1));
  if (!query.has(param)) return { kind: 'none' };
  const all = query.getAll(param);
  const callback = all[0]!;
  if (all.length > 1) return { kind: 'bad', message: `the ${param} parameter must appear once` };
  if (callback.length > MAX_CALLBACK_CHARS || !CALLBACK_PATTERN.test(callback)) {
    return { kind: 'bad', message: `the ${param} parameter must be a JavaScript identifier path of at most ${MAX_CALLBACK_CHARS} characters (A-Z a-z 0-9 _ $, dots between names)` };
  }
  // Every other parameter keeps its exact spelling: only the callback's pairs are cut out.
  const kept = url
    .slice(q + 1)
    .split('&')
    .filter((pair) => {
      const name = pair.split('=', 1)[0]!;
      try {
        return decodeURIComponent(name.replace(/\+/g, ' ')) !== param;
      } catch {
        return true;
      }
    });
  req.url = kept.length === 0 ? url.slice(0, q) : `${url.slice(0, q)}?${kept.join('&')}`;
  const wrap: JsonpWrap = { callback, mode };
  wraps.set(res, wrap);
  return { kind: 'wrap', wrap };
}

/** JSON text safe inside a script in every browser: U+2028 and U+2029 end a line in pre-ES2019 JavaScript. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** `response` as the script that hands it to the callback. */
export function wrapJsonp(response: HeldResponse, reason: string, wrap: JsonpWrap): HeldResponse {
  let script: string;
  if (wrap.mode === 'extended') {
    const headers: Record<string, string> = {};
    for (const name in response.headers) {
      if (name === 'content-length') continue;
      const value = response.headers[name]!;
      headers[name] = typeof value === 'string' ? value : value[0]!;
    }
    const body = response.body.toString('utf8');
    script = `/**/${wrap.callback}({"code": ${response.code}, "reason": ${scriptJson(reason)}, "headers": ${scriptJson(headers)}, "body": ${scriptJson(body)}});\n`;
  } else {
    let body = response.body.toString('utf8');
    if (body.endsWith('\r\n')) body = body.slice(0, -2);
    else if (body.endsWith('\n')) body = body.slice(0, -1);
    script = `/**/${wrap.callback}(${body});\n`;
  }
  const headers: HeaderMap = {
    'content-type': 'application/javascript',
    // The callback name is ours to check, the body the app's: never let a browser read this as anything but script.
    'x-content-type-options': 'nosniff',
  };
  for (const name of MIRRORED) {
    const value = response.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  return { code: 200, headers, body: Buffer.from(script, 'utf8') };
}
