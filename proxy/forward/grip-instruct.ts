/**
 * `Content-Type: application/grip-instruct` (docs/protocol.md §3.2): the app
 * answers with its instruction as a JSON body instead of headers, as Pushpin
 * 1.36 reads it (src/handler/instruct.cpp). Translated into the header form
 * (a head and a body the header parser reads), so both forms give the same
 * `HoldInstruction` and every check applies to both. Pure; a malformed body
 * throws `InstructionError` with `PROXY_ERR_BAD_GRIP_INSTRUCT`.
 *
 * ```json
 * {"hold": {"mode": "response", "channels": [{"name": "c", "prev-id": "1", "filters": ["skip-self"]}],
 *           "timeout": 30, "meta": {"user": "ada"}},
 *  "response": {"code": 200, "reason": "OK", "headers": {"Content-Type": "application/json"}, "body": "{}"}}
 * ```
 */
import type { IncomingHttpHeaders } from 'node:http';
import { GRIP_CHANNEL, GRIP_EXPOSE_HEADERS, GRIP_HOLD, GRIP_SET_META, GRIP_STATUS, GRIP_TIMEOUT } from '../../protocol/headers.js';
import { InstructionError, type UpstreamHead } from './instruction.js';
import { GRIP_KEEP_ALIVE } from '../streams/stream-instruction.js';

export const GRIP_INSTRUCT_TYPE = 'application/grip-instruct';

const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Is the answer's media type `application/grip-instruct` (parameters ignored, case-insensitive)? */
export function isGripInstruct(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  if (type === undefined) return false;
  return type.split(';', 1)[0]!.trim().toLowerCase() === GRIP_INSTRUCT_TYPE;
}

function bad(message: string): never {
  throw new InstructionError(`application/grip-instruct: ${message}`, 'PROXY_ERR_BAD_GRIP_INSTRUCT');
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(obj: Json, key: string, path: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') bad(`${path}.${key} must be a string`);
  return value;
}

/** A header parameter value as a quoted string: `"a \"b\""`. */
function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function append(headers: IncomingHttpHeaders, name: string, value: string): void {
  const previous = headers[name];
  if (previous === undefined) headers[name] = value;
  else headers[name] = [...(Array.isArray(previous) ? previous : [previous]), value];
}

function channelsOf(hold: Json): string[] {
  const list = hold.channels;
  if (!Array.isArray(list)) bad('hold.channels must be a list');
  return list.map((channel, i) => {
    const path = `hold.channels[${i}]`;
    if (!isObject(channel)) bad(`${path} must be an object`);
    const name = optionalString(channel, 'name', path);
    if (name === undefined) bad(`${path}.name is required`);
    // Names are checked by the Grip-Channel parser; these characters would change the header's structure.
    if (/[,;"\s]/.test(name)) bad(`${path}.name ${JSON.stringify(name)} is not a valid channel name`);
    let entry = name;
    const prevId = optionalString(channel, 'prev-id', path);
    if (prevId !== undefined) entry += `; prev-id=${quoted(prevId)}`;
    const filters = channel.filters ?? [];
    if (!Array.isArray(filters)) bad(`${path}.filters must be a list`);
    for (const filter of filters) {
      if (typeof filter !== 'string') bad(`${path}.filters contains a value that is not a string`);
      entry += `; filter=${quoted(filter)}`;
    }
    return entry;
  });
}

function metaOf(hold: Json): string | undefined {
  const meta = hold.meta;
  if (meta === undefined || meta === null) return undefined;
  if (!isObject(meta)) bad('hold.meta must be an object');
  return Object.entries(meta)
    .map(([key, value]) => {
      if (typeof value !== 'string') bad(`hold.meta contains ${JSON.stringify(key)} with a value that is not a string`);
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) bad(`hold.meta key ${JSON.stringify(key)} is not a token`);
      return `${key}=${quoted(value)}`;
    })
    .join(', ');
}

function responseHeadersOf(response: Json, into: IncomingHttpHeaders): void {
  const headers = response.headers;
  if (headers === undefined || headers === null) return;
  let pairs: unknown[];
  if (Array.isArray(headers)) pairs = headers;
  else if (isObject(headers)) pairs = Object.entries(headers);
  else bad('response.headers must be an object or a list of [name, value] pairs');
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      bad('response.headers must hold [name, value] pairs of strings');
    }
    const [name, value] = pair as [string, string];
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) bad(`response.headers has an invalid header ${JSON.stringify(name)}`);
    const lower = name.toLowerCase();
    // The instruction is the JSON's `hold`; Grip-* names inside the response template are not instructions.
    if (lower.startsWith('grip-')) continue;
    append(into, lower, value);
  }
}

/**
 * The header form of a grip-instruct answer: the answer's own `Grip-*` headers still count (as in Pushpin; the
 * JSON's channels are added to theirs, its mode, timeout and code win), its other headers and body are replaced
 * by the JSON's `response` (empty without one). Without `hold` the result has no `Grip-Hold`: the client gets
 * the JSON's response as a plain answer.
 */
/** A stream hold's `keep-alive` (`content` or `content-bin`, `timeout` default 55 s) as a `Grip-Keep-Alive` header value. */
function keepAliveOf(value: unknown): string {
  if (!isObject(value)) bad('hold.keep-alive must be an object');
  const bin = optionalString(value, 'content-bin', 'hold.keep-alive');
  const text = bin === undefined ? optionalString(value, 'content', 'hold.keep-alive') : undefined;
  if (bin !== undefined && !BASE64_PATTERN.test(bin)) bad('hold.keep-alive.content-bin must be base64');
  const data = bin ?? Buffer.from(text ?? '', 'utf8').toString('base64');
  const timeout = value.timeout ?? 55;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0) bad('hold.keep-alive.timeout must be a non-negative integer (seconds)');
  // The header's own checks (1-3600 s, 1-4096 bytes) then apply, as for an answer that sent the header.
  return `${data}; format=base64; timeout=${timeout}`;
}

export function translateGripInstruct(upstream: UpstreamHead, body: Buffer): { head: UpstreamHead; body: Buffer } {
  if (upstream.statusCode !== 200) bad(`the answer's status must be 200, got ${upstream.statusCode}`);
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    bad('the body is not JSON');
  }
  if (!isObject(doc)) bad('the body must be a JSON object');

  const headers: IncomingHttpHeaders = {};
  for (const name in upstream.headers) {
    // The answer's Grip-Expose-Headers filtered its own headers, which the JSON replaces (Pushpin applies it before).
    if (name.startsWith('grip-') && name !== GRIP_EXPOSE_HEADERS) headers[name] = upstream.headers[name];
  }
  const head: UpstreamHead = { statusCode: 200, headers };

  if (doc.hold !== undefined) {
    const hold = doc.hold;
    if (!isObject(hold)) bad('hold must be an object');
    const mode = optionalString(hold, 'mode', 'hold') ?? 'response';
    headers[GRIP_HOLD] = mode;
    for (const channel of channelsOf(hold)) append(headers, GRIP_CHANNEL, channel);
    if (hold.timeout !== undefined) {
      const timeout = hold.timeout;
      if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0) bad('hold.timeout must be a non-negative integer (seconds)');
      headers[GRIP_TIMEOUT] = String(timeout);
    }
    const meta = metaOf(hold);
    if (meta !== undefined && meta !== '') append(headers, GRIP_SET_META, meta);
    // `keep-alive` applies to stream holds only (Pushpin ignores it for a response hold).
    if (mode === 'stream' && hold['keep-alive'] !== undefined) headers[GRIP_KEEP_ALIVE] = keepAliveOf(hold['keep-alive']);
  }

  let out = Buffer.alloc(0);
  if (doc.response !== undefined) {
    const response = doc.response;
    if (!isObject(response)) bad('response must be an object');
    if (response.code !== undefined) {
      const code = response.code;
      if (typeof code !== 'number' || !Number.isInteger(code) || code < 100 || code > 999) bad('response.code must be an integer 100-999');
      head.statusCode = code;
      // A code in the JSON wins over the answer's Grip-Status.
      delete headers[GRIP_STATUS];
    }
    const reason = optionalString(response, 'reason', 'response');
    if (reason !== undefined && reason !== '') head.statusMessage = reason;
    responseHeadersOf(response, headers);
    const bodyBin = optionalString(response, 'body-bin', 'response');
    const text = bodyBin === undefined ? optionalString(response, 'body', 'response') : undefined;
    if (bodyBin !== undefined) {
      if (!BASE64_PATTERN.test(bodyBin)) bad('response.body-bin must be base64');
      out = Buffer.from(bodyBin, 'base64');
    } else if (text !== undefined) {
      out = Buffer.from(text, 'utf8');
    }
  }
  return { head, body: out };
}
