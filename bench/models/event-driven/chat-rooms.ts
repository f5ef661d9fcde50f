/**
 * The chat state of the event-driven server: rooms by name and the one global,
 * increasing event id (docs/chat-api.md "Events"). Each event is serialized
 * here, once, in the chat API's key order, and appended to its room's log.
 */
import { RoomLog } from './room-log.js';
import type { LabUser } from './sessions.js';

export class ChatRooms {
  private readonly byName = new Map<string, RoomLog>();
  private lastId = 0;

  get(name: string): RoomLog | undefined {
    return this.byName.get(name);
  }

  /** The new room, or `undefined` when the name is taken. */
  create(name: string): RoomLog | undefined {
    if (this.byName.has(name)) return undefined;
    const room = new RoomLog(name);
    this.byName.set(name, room);
    return room;
  }

  /** Makes `user` a member; appends a `join` event unless it already was one. Returns whether it joined now. */
  join(room: RoomLog, user: LabUser): boolean {
    if (room.members.has(user.id)) return false;
    room.members.add(user.id);
    this.append(room, user, 'join', undefined);
    return true;
  }

  /** Appends a `message` event; returns its JSON. */
  post(room: RoomLog, user: LabUser, text: string): string {
    return this.append(room, user, 'message', text);
  }

  private append(room: RoomLog, user: LabUser, type: 'join' | 'message', text: string | undefined): string {
    const id = ++this.lastId;
    const textPart = text === undefined ? '' : `,"text":${JSON.stringify(text)}`;
    const json = `{"id":${id},"room":${room.nameJson},"type":"${type}","user":${user.json}${textPart},"at":"${new Date().toISOString()}"}`;
    room.append(id, json);
    return json;
  }
}
