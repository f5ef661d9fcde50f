/**
 * Validation of control API bodies (docs/protocol.md §7): pure functions that
 * check a whole parsed JSON body before anything is delivered, and turn it into
 * registry commands. The first problem found is reported with its path, e.g.
 * `items[2].formats.http-response.code must be an integer 100-999`.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { HttpResponseFormat } from '../../protocol/control-api.js';
import { isChannelName, isConnectionId, isItemId } from '../../protocol/ids.js';
import type { CloseCommand, PublishCommand, PushCommand, RevokeCommand, StreamItem } from './commands.js';
import { decodeItemResponse, type ItemResponse } from '../http/response.js';

/** Codes a refused body is answered with (all 400, proxy/errors.ts). */
export type ItemValidationCode = 'PROXY_ERR_INVALID_ITEM' | 'PROXY_ERR_INVALID_STATUS' | 'PROXY_ERR_TOO_MANY_IDS';

/** A body that is valid JSON but not a valid request; answered 400 with its `code`. */
export class ItemValidationError extends Error {
  override name = 'ItemValidationError';
  constructor(
    message: string,
    readonly code: ItemValidationCode = 'PROXY_ERR_INVALID_ITEM',
  ) {
    super(message);
  }
}

const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const REASON_PATTERN = /^[\t\x20-\x7e\x80-\xff]*$/;
/** A status code written as text, as GRIP libraries do: exactly three digits. */
const CODE_TEXT_PATTERN = /^\d{3}$/;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(path: string, problem: string, code?: ItemValidationCode): never {
  throw new ItemValidationError(`${path} ${problem}`, code);
}

/**
 * Why `code` cannot go to a parked client with a body of `bodyBytes`, or null. The proxy writes an item as one
 * final response: a 1xx is interim (the client keeps waiting for the real answer, or takes 101 as an upgrade),
 * and 204/304 end at their headers whatever Content-Length says (RFC 9112 §6.3), so a body would be lost or,
 * to a client that reads it, the start of the next response. Codes past 599 are not HTTP statuses (RFC 9110 §15).
 */
function statusProblem(code: number, bodyBytes: number): string | null {
  if (code < 200) return `${code} is informational: an item must carry a final status (200-599)`;
  if (code > 599) return `${code} is not an HTTP status: an item must carry a final status (200-599)`;
  if ((code === 204 || code === 304) && bodyBytes > 0) return `${code} cannot carry a body: send it with an empty body`;
  return null;
}

function itemsOf(body: unknown): unknown[] {
  if (!isObject(body) || !Array.isArray(body.items)) fail('body', 'must be a JSON object with an "items" array');
  return body.items;
}

function optionalItemId(item: Json, key: string, path: string): string | undefined {
  const value = item[key];
  if (value === undefined) return undefined;
  if (!isItemId(value)) fail(`${path}.${key}`, 'must be 1-128 characters from A-Z a-z 0-9 _ . : @ / + ! # $ % & * ^ | ~ - =');
  return value;
}

function connectionIdOf(item: Json, path: string): string {
  const value = item['connection-id'];
  if (!isConnectionId(value)) fail(`${path}.connection-id`, 'must be a connection ID (21 characters from A-Z a-z 0-9 _ -)');
  return value;
}

function headerPairs(value: unknown, path: string): Array<[string, string]> {
  let pairs: unknown[];
  if (Array.isArray(value)) pairs = value;
  else if (isObject(value)) pairs = Object.entries(value);
  else fail(path, 'must be an object or a list of [name, value] pairs');
  return pairs.map((pair, i) => {
    const where = Array.isArray(value) ? `${path}[${i}]` : `${path}.${String((pair as unknown[])[0])}`;
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      fail(where, 'must be a [name, value] pair of strings');
    }
    const [name, text] = pair as [string, string];
    try {
      validateHeaderName(name);
      validateHeaderValue(name, text);
    } catch {
      fail(where, 'must be a valid header name and value');
    }
    return [name, text];
  });
}

/** The formats object of a publish item; it needs at least one format, as in Pushpin. */
function formatsOf(formats: unknown, path: string): Json {
  if (!isObject(formats)) fail(path, 'must be an object');
  if (Object.keys(formats).length === 0) fail(`${path}.http-response`, 'is required (the item names no format)');
  return formats;
}

/**
 * Checks an `http-stream` format (docs/protocol.md §14.3): `action` `send` (default) with `content` or
 * `content-bin`, or `close` (any content is ignored, as `@fanoutio/grip` sends `"content": ""` with it).
 * `hint` and `refresh` need a `Grip-Link` the proxy does not follow: refused.
 */
function streamItemOf(format: unknown, at: string): StreamItem {
  if (!isObject(format)) fail(at, 'must be an object');
  const action = format.action ?? 'send';
  if (action !== 'send' && action !== 'close') fail(`${at}.action`, 'must be "send" or "close"');
  const { content } = format;
  const contentBin = format['content-bin'];
  if (content !== undefined && typeof content !== 'string') fail(`${at}.content`, 'must be a string');
  if (contentBin !== undefined && (typeof contentBin !== 'string' || !BASE64_PATTERN.test(contentBin))) fail(`${at}.content-bin`, 'must be a base64 string');
  if (content !== undefined && contentBin !== undefined) fail(at, 'must not have both content and content-bin');
  if (action === 'close') return { action, content: Buffer.alloc(0) };
  if (content === undefined && contentBin === undefined) fail(at, 'needs content or content-bin');
  return { action, content: contentBin !== undefined ? Buffer.from(contentBin as string, 'base64') : Buffer.from(content as string, 'utf8') };
}

/**
 * Checks an `http-response` format. With `allowHint`, `action: "hint"` is
 * accepted (publish only) and needs no body; `send` needs `body` or `body-bin`.
 */
function httpResponseOf(formats: unknown, path: string, allowHint: boolean): { action: 'send' | 'hint'; response: ItemResponse | null } {
  if (!isObject(formats)) fail(path, 'must be an object');
  const format = formats['http-response'];
  const at = `${path}.http-response`;
  if (format === undefined) fail(at, 'is required');
  if (!isObject(format)) fail(at, 'must be an object');

  const action = format.action ?? 'send';
  if (action !== 'send' && !(allowHint && action === 'hint')) {
    // `close` never gets here on a publish (parsePublishBody takes it first).
    fail(`${at}.action`, allowHint ? 'must be "send", "hint" or "close"' : 'must be "send"');
  }
  const { reason, body } = format;
  const bodyBin = format['body-bin'];
  // @fanoutio/grip types `code` as a string and sends it as one ("code": "404"); Pushpin converts it.
  const code = typeof format.code === 'string' && CODE_TEXT_PATTERN.test(format.code) ? Number(format.code) : format.code;
  if (code !== undefined && (typeof code !== 'number' || !Number.isInteger(code) || code < 100 || code > 999)) {
    fail(`${at}.code`, 'must be an integer 100-999');
  }
  if (reason !== undefined && (typeof reason !== 'string' || !REASON_PATTERN.test(reason))) {
    fail(`${at}.reason`, 'must be a string without control characters');
  }
  const headers = format.headers === undefined ? undefined : headerPairs(format.headers, `${at}.headers`);
  if (body !== undefined && typeof body !== 'string') fail(`${at}.body`, 'must be a string');
  if (bodyBin !== undefined && (typeof bodyBin !== 'string' || !BASE64_PATTERN.test(bodyBin))) {
    fail(`${at}.body-bin`, 'must be a base64 string');
  }
  if (body !== undefined && bodyBin !== undefined) fail(at, 'must not have both body and body-bin');
  if (action === 'hint') return { action, response: null };
  if (body === undefined && bodyBin === undefined) fail(at, 'needs body or body-bin');
  if (code !== undefined) {
    // Base64 decodes to 3 bytes per 4 characters, less padding: only "empty or not" matters here.
    const bodyBytes = body !== undefined ? (body as string).length : (bodyBin as string).length;
    const problem = statusProblem(code as number, bodyBytes);
    if (problem !== null) fail(`${at}.code`, problem, 'PROXY_ERR_INVALID_STATUS');
  }

  const checked: HttpResponseFormat = {};
  if (code !== undefined) checked.code = code as number;
  if (reason !== undefined) checked.reason = reason as string;
  if (headers !== undefined) checked.headers = headers;
  if (body !== undefined) checked.body = body as string;
  if (bodyBin !== undefined) checked['body-bin'] = bodyBin as string;
  return { action: 'send', response: decodeItemResponse(checked) };
}

/** Bounds on an item's `meta`, which the proxy reads once per parked request with filters. */
const MAX_META_KEYS = 16;
const MAX_META_KEY_CHARS = 64;
const MAX_META_VALUE_CHARS = 1024;

/** A publish item's `meta` (Pushpin's): an object of string values, e.g. `{"sender": "ada"}` for `skip-self`. */
function metaOf(value: unknown, path: string): Record<string, string> {
  if (!isObject(value)) fail(path, 'must be an object of strings');
  const entries = Object.entries(value);
  if (entries.length > MAX_META_KEYS) fail(path, `must have at most ${MAX_META_KEYS} keys`);
  const meta: Record<string, string> = {};
  for (const [key, text] of entries) {
    if (key === '' || key.length > MAX_META_KEY_CHARS) fail(path, `keys must have 1-${MAX_META_KEY_CHARS} characters`);
    if (typeof text !== 'string' || text.length > MAX_META_VALUE_CHARS) fail(`${path}.${key}`, `must be a string of at most ${MAX_META_VALUE_CHARS} characters`);
    meta[key] = text;
  }
  return meta;
}

/**
 * Validates a `POST /publish/` body. Throws `ItemValidationError`. An item's `http-response` goes to parked
 * requests and its `http-stream` to streams (docs/protocol.md §14.3). An `http-response` with `action: "close"`
 * is accepted and, as in Pushpin, does nothing to a parked request ("better to send a real response",
 * fastly/pushpin src/handler/httpsession.cpp). Items with nothing for either (`ws-message` only) are checked and
 * left out; items with no `http-response` to deliver do not move the channel's last id for parked requests (a
 * later item's prev-id that skips them re-asks, losslessly).
 */
export function parsePublishBody(body: unknown, now: () => number = Date.now): PublishCommand[] {
  const commands: PublishCommand[] = [];
  itemsOf(body).forEach((item, i) => {
    const path = `items[${i}]`;
    if (!isObject(item)) fail(path, 'must be an object');
    if (!isChannelName(item.channel)) {
      fail(`${path}.channel`, 'must be 1-128 characters from A-Z a-z 0-9 _ . : @ / + ! # $ % & * ^ | ~ -');
    }
    const id = optionalItemId(item, 'id', path);
    const prevId = optionalItemId(item, 'prev-id', path);
    const meta = item.meta === undefined ? undefined : metaOf(item.meta, `${path}.meta`);
    const formats = formatsOf(item.formats, `${path}.formats`);
    const stream = formats['http-stream'] === undefined ? undefined : streamItemOf(formats['http-stream'], `${path}.formats.http-stream`);
    const httpResponse = formats['http-response'];
    let forHolds: Pick<PublishCommand, 'action' | 'response'> = { action: 'none', response: null };
    // Pushpin ignores `close` for response holds: nothing for parked requests, and no 400.
    if (httpResponse !== undefined && !(isObject(httpResponse) && httpResponse.action === 'close')) {
      forHolds = httpResponseOf(formats, `${path}.formats`, true);
    }
    if (forHolds.action === 'none' && stream === undefined) return;
    const command: PublishCommand = { channel: item.channel, ...forHolds };
    if (stream !== undefined) command.stream = stream;
    if (item['comet-revoke'] !== undefined) {
      const revokes = item['comet-revoke'];
      if (!Array.isArray(revokes) || revokes.length > 100) fail(`${path}.comet-revoke`, 'must be a list of at most 100 revoke items');
      command.revoke = revokes.map((r, j) => revokeCommandOf(r, `${path}.comet-revoke[${j}]`, now));
    }
    if (id !== undefined) command.id = id;
    if (prevId !== undefined) command.prevId = prevId;
    if (meta !== undefined) command.meta = meta;
    commands.push(command);
  });
  return commands;
}

/**
 * Each call may name at most `maxIds` distinct connection IDs: every new one can cost a queue or a tombstone,
 * and a 1 MiB body names over 12,000.
 */
function checkIdCount(commands: ReadonlyArray<{ connectionId: string }>, maxIds: number): void {
  const ids = new Set(commands.map((c) => c.connectionId)).size;
  if (ids > maxIds) fail('body', `names ${ids} distinct connection IDs; one call may name at most ${maxIds}`, 'PROXY_ERR_TOO_MANY_IDS');
}

/** Validates a `POST /push/` body naming at most `maxIds` distinct connection IDs. Throws `ItemValidationError`. */
export function parsePushBody(body: unknown, maxIds = Infinity): PushCommand[] {
  const commands = itemsOf(body).map((item, i) => {
    const path = `items[${i}]`;
    if (!isObject(item)) fail(path, 'must be an object');
    const connectionId = connectionIdOf(item, path);
    const { response } = httpResponseOf(item.formats, `${path}.formats`, false);
    const command: PushCommand = { connectionId, response: response! };
    const id = optionalItemId(item, 'id', path);
    if (id !== undefined) command.id = id;
    return command;
  });
  checkIdCount(commands, maxIds);
  return commands;
}

/** Validates a `POST /close/` body naming at most `maxIds` distinct connection IDs. Throws `ItemValidationError`. */
export function parseCloseBody(body: unknown, maxIds = Infinity): CloseCommand[] {
  const commands = itemsOf(body).map((item, i) => {
    const path = `items[${i}]`;
    if (!isObject(item)) fail(path, 'must be an object');
    const command: CloseCommand = { connectionId: connectionIdOf(item, path) };
    // `formats` is optional here; when present its `http-response` is checked like any other.
    if (item.formats !== undefined) {
      if (!isObject(item.formats)) fail(`${path}.formats`, 'must be an object');
      if (item.formats['http-response'] !== undefined) {
        command.response = httpResponseOf(item.formats, `${path}.formats`, false).response!;
      }
    }
    return command;
  });
  checkIdCount(commands, maxIds);
  return commands;
}

/** Largest `issued-before`: a revocation far in the future would refuse every lease of a subject for good. */
const MAX_FUTURE_MS = 24 * 3600 * 1000;

/** One revoke item: `subject` and/or `connection-id`, optional `issued-before` (ms, default now). */
function revokeCommandOf(item: unknown, path: string, now: () => number): RevokeCommand {
  if (!isObject(item)) fail(path, 'must be an object');
  const command: RevokeCommand = { issuedBeforeMs: now() };
  if (item.subject !== undefined) {
    if (typeof item.subject !== 'string' || item.subject === '' || item.subject.length > 128) fail(`${path}.subject`, 'must be a string of 1-128 characters');
    command.subject = item.subject;
  }
  if (item['connection-id'] !== undefined) command.connectionId = connectionIdOf(item, path);
  if (command.subject === undefined && command.connectionId === undefined) fail(path, 'needs subject or connection-id');
  const before = item['issued-before'];
  if (before !== undefined) {
    if (typeof before !== 'number' || !Number.isSafeInteger(before) || before < 0 || before > now() + MAX_FUTURE_MS) {
      fail(`${path}.issued-before`, 'must be a time in ms since the epoch, at most a day ahead');
    }
    command.issuedBeforeMs = before;
  }
  return command;
}

/** Validates a `POST /revoke/` body (docs/protocol.md §13.4). Throws `ItemValidationError`. */
export function parseRevokeBody(body: unknown, now: () => number = Date.now): RevokeCommand[] {
  return itemsOf(body).map((item, i) => revokeCommandOf(item, `items[${i}]`, now));
}
