/**
 * Rooms: list, create, join, leave, members.
 */
import { Router } from 'express';
import type { ChatService } from '../chat-service.js';
import { jsonBody } from '../http/json-body.js';
import { roomParam, sessionOf } from '../http/request-context.js';
import { requireSession } from '../http/session.js';
import { objectBody, parseRoomName } from '../validation.js';

export interface RoomsRoutesOptions {
  bodyMaxBytes: number;
}

export function roomsRoutes(chat: ChatService, options: RoomsRoutesOptions): Router {
  const router = Router();
  router.get('/rooms', requireSession, (req, res) => {
    res.json({ rooms: chat.listRooms(sessionOf(req)) });
  });

  router.post('/rooms', requireSession, ...jsonBody(options.bodyMaxBytes), async (req, res) => {
    const room = await chat.createRoom(sessionOf(req), parseRoomName(objectBody(req.body)));
    res.status(201).json({ room });
  });

  router.post('/rooms/:room/join', requireSession, async (req, res) => {
    const { room, cursor } = await chat.joinRoom(sessionOf(req), roomParam(req));
    res.json({ room, cursor });
  });

  router.post('/rooms/:room/leave', requireSession, async (req, res) => {
    const { room } = await chat.leaveRoom(sessionOf(req), roomParam(req));
    res.json({ room });
  });

  router.get('/rooms/:room/members', requireSession, (req, res) => {
    res.json({ members: chat.members(sessionOf(req), roomParam(req)) });
  });

  return router;
}
