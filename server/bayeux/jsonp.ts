/**
 * Bayeux `callback-polling` (Bayeux 1.0 §6.2, as CometD's CallbackPollingTransport
 * speaks it): a `<script>` tag GETs `/cometd?jsonp=NAME&message=URL-ENCODED-JSON-ARRAY`
 * and the answer is `NAME([...replies])` as `text/javascript`. Legacy browsers
 * without cross-origin XHR need it. Pure: the route does the I/O.
 *
 * The query is read from the raw URL rather than Express's parsed `req.query`:
 * percent-decoding there turns invalid UTF-8 into U+FFFD silently, and the POST
 * form refuses that (server/http/json-body.ts), so this form refuses it too.
 */
import { AppError } from '../errors.js';

/** The query parameters CometD sends (CallbackPollingTransport.jsonpSend). */
export const JSONP_CALLBACK_PARAM = 'jsonp';
export const JSONP_MESSAGE_PARAM = 'message';

/** Longest callback name, characters: CometD's are `_cometd_jsonp_N`, dojo's and jQuery's dotted paths fit. */
export const JSONP_CALLBACK_MAX_CHARS = 128;

/**
 * ASCII identifiers joined by dots (`_cometd_jsonp_3`, `dojo.io.script.jsonp_x._jsonpCallback`).
 * Nothing else may reach the answer: the name is written into executable JavaScript.
 */
const CALLBACK_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*$/;

/** The callback-polling request: the callback's name and the messages, still JSON text. */
export interface JsonpRequest {
  callback: string;
  /** The `message` parameter, decoded: a JSON array of Bayeux messages, parsed by the route. */
  messageJson: string;
}

function badCallback(message: string): AppError {
  return new AppError('APP_ERR_BAD_JSONP_CALLBACK', message);
}

/**
 * The query parameters named `name`, decoded as `application/x-www-form-urlencoded`
 * (`+` is a space). Throws 400 `APP_ERR_BAD_JSON` for percent-escapes that are not UTF-8.
 */
function params(rawQuery: string, name: string): string[] {
  const values: string[] = [];
  for (const pair of rawQuery.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key !== name) continue;
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    try {
      values.push(decodeURIComponent(value.replace(/\+/g, ' ')));
    } catch {
      throw new AppError('APP_ERR_BAD_JSON', `the ${name} parameter is not valid percent-encoded UTF-8`);
    }
  }
  return values;
}

/**
 * Reads a callback-polling request from the request target (`/cometd?...`).
 * Throws 400 `APP_ERR_BAD_JSONP_CALLBACK` (missing, repeated or not a plain
 * dotted identifier), 400 `APP_ERR_INVALID_BODY` (no single `message`),
 * 413 `APP_ERR_BODY_TOO_LARGE` (decoded `message` over `maxBytes`).
 */
export function parseJsonpRequest(url: string, maxBytes: number): JsonpRequest {
  const q = url.indexOf('?');
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const callbacks = params(rawQuery, JSONP_CALLBACK_PARAM);
  if (callbacks.length !== 1) {
    throw badCallback(`a GET to the Bayeux endpoint is callback-polling: it needs exactly one ${JSONP_CALLBACK_PARAM}= callback name`);
  }
  const callback = callbacks[0]!;
  if (callback.length > JSONP_CALLBACK_MAX_CHARS || !CALLBACK_NAME.test(callback)) {
    throw badCallback(`the ${JSONP_CALLBACK_PARAM} callback must be ASCII identifiers joined by dots, at most ${JSONP_CALLBACK_MAX_CHARS} characters`);
  }
  const messages = params(rawQuery, JSONP_MESSAGE_PARAM);
  if (messages.length !== 1) {
    throw new AppError('APP_ERR_INVALID_BODY', `callback-polling sends its messages in exactly one ${JSONP_MESSAGE_PARAM}= parameter (a JSON array)`);
  }
  const messageJson = messages[0]!;
  if (Buffer.byteLength(messageJson, 'utf8') > maxBytes) {
    throw new AppError('APP_ERR_BODY_TOO_LARGE', `the ${JSONP_MESSAGE_PARAM} parameter is larger than ${maxBytes} bytes`);
  }
  return { callback, messageJson };
}

/** Parses the `message` JSON; 400 `APP_ERR_BAD_JSON` when it is not JSON. */
export function parseJsonpMessages(messageJson: string): unknown {
  try {
    return JSON.parse(messageJson) as unknown;
  } catch {
    throw new AppError('APP_ERR_BAD_JSON', `the ${JSONP_MESSAGE_PARAM} parameter is not JSON`);
  }
}

/** The content type of a callback-polling answer (RFC 9239). */
export const JSONP_CONTENT_TYPE = 'text/javascript; charset=utf-8';

/**
 * The answer's body: `/**\/NAME([...]);`. The leading empty comment keeps the first
 * bytes out of the attacker's hands (a response that starts with a chosen name was
 * once read as a Flash file, "Rosetta Flash", CVE-2014-4671); U+2028 and U+2029 are
 * escaped because JavaScript before ES2019 ends a line at them inside strings.
 */
export function jsonpBody(callback: string, replies: unknown): string {
  const json = JSON.stringify(replies).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  return `/**/${callback}(${json});`;
}
