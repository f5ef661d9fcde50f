/**
 * Routes of the event-driven server: the lab's subset of the chat API
 * (docs/chat-api.md) on bare `node:http`. Each route checks its input, then
 * touches the in-memory state (sessions, rooms) and hands readers to the hub.
 * Field rules are the chat app's own parsers, so both servers accept and
 * refuse the same requests.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isConnectionId } from '../../../protocol/ids.js';
import { parseCursor, parseRoomCursors } from '../../../server/cursors.js';
import { objectBody, parseMessageText, parseNick, parseRoomName } from '../../../server/validation.js';
import { LAB_STATS_PATH } from '../lab-server.js';
import type { ChatRooms } from './chat-rooms.js';
import { clientError, LabError, notMember, noSession, roomNotFound } from './errors.js';
import type { Hub } from './hub.js';
import { readJsonBody, sendError, sendJson } from './http-io.js';
import type { RoomCursorRef, RoomLog } from './room-log.js';
import { Sessions, type LabUser } from './sessions.js';
import type { StreamFormat } from './stream-format.js';

/** Longest message, characters (docs/chat-api.md). */
const MESSAGE_MAX_CHARS = 2000;

const ROOMS_PREFIX = '/api/rooms/';

export interface RouterDeps {
  rooms: ChatRooms;
  sessions: Sessions;
  hub: Hub;
  /** false: answer every poll at once (short polling). */
  parkPolls: boolean;
  /** Stream formats by `transport` query value. */
  formats: ReadonlyMap<string, StreamFormat>;
}

/** A new connection ID: 21 URL-safe characters (protocol/ids.ts), 126 random bits. */
function newConnectionId(): string {
  return randomBytes(16).toString('base64url').slice(0, 21);
}

/** A query parameter given at most once: repeated ones are refused, not guessed at. */
function single(query: URLSearchParams, name: string): string | string[] | undefined {
  const all = query.getAll(name);
  return all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
}

/** `cid` absent or empty: the client has none yet. Otherwise a well-formed ID, given once. */
function parseCid(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!isConnectionId(raw)) {
    throw new LabError('APP_ERR_BAD_CONNECTION_ID', 'cid must be a connection ID (21 characters of A-Z a-z 0-9 _ -), given once');
  }
  return raw;
}

export function createRouter(deps: RouterDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { rooms, sessions, hub } = deps;

  function userOf(req: IncomingMessage): LabUser {
    const user = sessions.fromCookieHeader(req.headers.cookie);
    if (user === undefined) throw noSession();
    return user;
  }

  function roomOf(name: string): RoomLog {
    const room = rooms.get(name);
    if (room === undefined) throw roomNotFound(name);
    return room;
  }

  /** The rooms and cursors of `?rooms=name:cursor,...`, each an existing room the user is a member of. */
  function readerCursors(query: URLSearchParams, user: LabUser): RoomCursorRef[] {
    return parseRoomCursors(single(query, 'rooms')).map(({ room: name, cursor }) => {
      const room = roomOf(name);
      if (!room.members.has(user.id)) throw notMember(name);
      return { room, cursor };
    });
  }

  function poll(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    const user = userOf(req);
    // Everything is checked before the hub sees the poll: a refused poll changes nothing.
    const subs = readerCursors(query, user);
    const cid = parseCid(single(query, 'cid')) ?? newConnectionId();
    hub.poll(res, cid, subs, deps.parkPolls);
  }

  function stream(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    const user = userOf(req);
    const transport = query.get('transport') ?? '';
    const format = deps.formats.get(transport);
    if (format === undefined) {
      throw new LabError('APP_ERR_BAD_TRANSPORT', `transport must be one of ${[...deps.formats.keys()].join(', ')}`);
    }
    const subs = readerCursors(query, user);
    const resume = format.resumeId?.(req, query);
    if (resume !== undefined) {
      const id = parseCursor(resume);
      if (id === null) throw new LabError('APP_ERR_BAD_CURSOR', 'Last-Event-ID must be a non-negative integer');
      // Ids are global and increasing: the last id the client saw is a cursor in every room.
      for (const sub of subs) sub.cursor = id;
    }
    hub.openStream(res, format, subs);
  }

  async function createSession(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const nick = parseNick(objectBody(await readJsonBody(req, res)));
    const { token, user } = sessions.create(nick);
    sendJson(res, 201, `{"user":${user.json}}`, ['Set-Cookie', Sessions.setCookie(token)]);
  }

  async function createRoom(req: IncomingMessage, res: ServerResponse): Promise<void> {
    userOf(req);
    const name = parseRoomName(objectBody(await readJsonBody(req, res)));
    const room = rooms.create(name);
    if (room === undefined) throw new LabError('APP_ERR_ROOM_EXISTS', `room ${JSON.stringify(name)} already exists`);
    sendJson(res, 201, `{"room":${room.viewJson()}}`);
  }

  function join(req: IncomingMessage, res: ServerResponse, name: string): void {
    const user = userOf(req);
    const room = roomOf(name);
    if (rooms.join(room, user)) hub.committed(room);
    sendJson(res, 200, `{"room":${room.viewJson()},"cursor":${room.lastEventId}}`);
  }

  async function postMessage(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const user = userOf(req);
    const room = roomOf(name);
    if (!room.members.has(user.id)) throw notMember(name);
    const text = parseMessageText(objectBody(await readJsonBody(req, res)), MESSAGE_MAX_CHARS);
    const json = rooms.post(room, user, text);
    hub.committed(room);
    sendJson(res, 201, `{"event":${json}}`);
  }

  /** Runs one route; sync or async, its refusals become `{code, message}` answers and nothing escapes. */
  function dispatch(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method;
    if (method === 'GET') {
      if (path === '/api/poll') return poll(req, res, new URLSearchParams(q === -1 ? '' : url.slice(q + 1)));
      if (path === '/api/stream') return stream(req, res, new URLSearchParams(q === -1 ? '' : url.slice(q + 1)));
      if (path === LAB_STATS_PATH) return sendJson(res, 200, `{"parked":${hub.parked}}`);
    } else if (method === 'POST') {
      if (path === '/api/session') return createSession(req, res);
      if (path === '/api/rooms') return createRoom(req, res);
      if (path.startsWith(ROOMS_PREFIX)) {
        const rest = path.slice(ROOMS_PREFIX.length);
        const slash = rest.indexOf('/');
        const name = rest.slice(0, slash);
        const action = rest.slice(slash + 1);
        if (slash > 0 && action === 'join') return join(req, res, name);
        if (slash > 0 && action === 'messages') return postMessage(req, res, name);
      }
    }
    throw new LabError('APP_ERR_NOT_FOUND', `no route for ${method ?? '?'} ${path}`);
  }

  function fail(res: ServerResponse, err: unknown): void {
    const known = clientError(err);
    if (known !== undefined) {
      sendError(res, known.status, known.code, known.message);
      return;
    }
    if (res.destroyed) return; // the client went away mid-body: nobody to answer
    process.stderr.write(`event-driven: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    sendError(res, 500, 'APP_ERR_INTERNAL', 'internal error');
  }

  return (req, res) => {
    try {
      const done = dispatch(req, res);
      if (done !== undefined) done.catch((err: unknown) => fail(res, err));
    } catch (err) {
      fail(res, err);
    }
  };
}
