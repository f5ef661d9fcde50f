/**
 * Field rules of the chat API (docs/chat-api.md, "Rules"). Each parser takes
 * the raw JSON value and returns the clean value or throws the coded error:
 * a wrong type is `APP_ERR_INVALID_BODY`, a string breaking the rule has its own code.
 */
import { AppError } from './errors.js';

/** Longest nick and room name in characters, as the patterns below say; GET /api/config tells clients. */
export const NICK_MAX_CHARS = 32;
export const ROOM_NAME_MAX_CHARS = 32;

/** 1-32 letters (any script), digits, space, `_`, `.`, `-`, counted in code points after trimming. */
const NICK_PATTERN = /^[\p{L}\p{Nd} _.-]{1,32}$/u;
/** 1-32 of `a-z 0-9 _ -`, starting with a letter or digit. Also valid inside a GRIP channel name. */
const ROOM_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * Control characters other than tab, newline and carriage return (C0, DEL, C1: NUL bytes, terminal escapes),
 * and UTF-16 halves without their pair (not encodable as UTF-8, so SQLite would store something else).
 */
const MESSAGE_FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]|\p{Cs}/u;

export const LOBBY_ROOM = 'lobby';

/** Reads a JSON object body; anything else (array, string, missing) is `APP_ERR_INVALID_BODY`. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AppError('APP_ERR_INVALID_BODY', 'the body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function stringField(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string') {
    throw new AppError('APP_ERR_INVALID_BODY', `${field} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

/**
 * NFKC-normalised, so that "é" typed either way is one letter and compatibility forms (full-width "ＡＤＡ")
 * become their plain letters; unique among live sessions by `nickKey` (server/store/nick-key.ts).
 */
export function parseNick(body: Record<string, unknown>): string {
  const nick = stringField(body, 'nick').normalize('NFKC').trim();
  if (!NICK_PATTERN.test(nick)) {
    throw new AppError(
      'APP_ERR_INVALID_NICK',
      'nick must be 1-32 letters, digits, spaces, "_", "." or "-" after trimming',
    );
  }
  return nick;
}

export function isRoomName(value: string): boolean {
  return ROOM_NAME_PATTERN.test(value);
}

/** Room names are taken as they are (no trimming or case folding): they are identifiers. */
export function parseRoomName(body: Record<string, unknown>): string {
  const name = stringField(body, 'name');
  if (!isRoomName(name)) {
    throw new AppError(
      'APP_ERR_INVALID_ROOM_NAME',
      'room name must be 1-32 characters of a-z, 0-9, "_" or "-", starting with a letter or digit',
    );
  }
  return name;
}

/**
 * Message text, trimmed; length counted in code points so an emoji counts as one character. Any markup is
 * kept verbatim: the API returns it as JSON text and clients must never interpret it as HTML.
 */
export function parseMessageText(body: Record<string, unknown>, maxChars: number): string {
  const text = stringField(body, 'text').trim();
  if (text === '') throw new AppError('APP_ERR_EMPTY_MESSAGE', 'the message is empty');
  if (MESSAGE_FORBIDDEN.test(text)) {
    throw new AppError('APP_ERR_INVALID_MESSAGE', 'the message contains control characters or unpaired surrogates');
  }
  let chars = 0;
  for (const _ of text) {
    if (++chars > maxChars) {
      throw new AppError('APP_ERR_MESSAGE_TOO_LONG', `the message is longer than ${maxChars} characters`);
    }
  }
  return text;
}

/** Characters of an `Idempotency-Key`: enough for a UUID, a ULID or `<room>:<seq>`, nothing that needs escaping. */
const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.~:-]{1,64}$/;

/** The `Idempotency-Key` header of a post (draft-ietf-httpapi-idempotency-key-header), or undefined when absent. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !IDEMPOTENCY_KEY.test(header)) {
    throw new AppError('APP_ERR_BAD_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1-64 characters of A-Z a-z 0-9 _ - . ~ :');
  }
  return header;
}
