/**
 * Errors of the event-driven server: the chat API's codes and statuses
 * (docs/chat-api.md) for what it implements, sent as `{code, message}`.
 * Field rules are the chat app's own parsers (server/validation.ts,
 * server/cursors.ts), whose `AppError`s are answered the same way.
 */
import { AppError } from '../../../server/errors.js';

const STATUS = {
  APP_ERR_NO_SESSION: 401,
  APP_ERR_ROOM_EXISTS: 409,
  APP_ERR_ROOM_NOT_FOUND: 404,
  APP_ERR_NOT_MEMBER: 403,
  APP_ERR_BAD_CURSOR: 400,
  APP_ERR_BAD_CONNECTION_ID: 400,
  APP_ERR_BAD_JSON: 400,
  APP_ERR_INVALID_BODY: 400,
  APP_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  APP_ERR_BODY_TOO_LARGE: 413,
  APP_ERR_NOT_FOUND: 404,
  /** `transport` of `GET /api/stream` is missing or not one this server streams. */
  APP_ERR_BAD_TRANSPORT: 400,
  APP_ERR_INTERNAL: 500,
} as const;

export type LabErrorCode = keyof typeof STATUS;

export class LabError extends Error {
  override name = 'LabError';
  readonly status: number;

  constructor(readonly code: LabErrorCode, message: string) {
    super(message);
    this.status = STATUS[code];
  }
}

/** An error meant for the client, with its status: ours or the chat app's validators'. */
export function clientError(err: unknown): { status: number; code: string; message: string } | undefined {
  return err instanceof LabError || err instanceof AppError ? err : undefined;
}

export const noSession = (): LabError => new LabError('APP_ERR_NO_SESSION', 'a session is required: POST /api/session first');
export const roomNotFound = (name: string): LabError =>
  new LabError('APP_ERR_ROOM_NOT_FOUND', `room ${JSON.stringify(name)} does not exist`);
export const notMember = (name: string): LabError =>
  new LabError('APP_ERR_NOT_MEMBER', `you are not a member of room ${JSON.stringify(name)}`);
