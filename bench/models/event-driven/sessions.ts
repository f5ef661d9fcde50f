/**
 * Sessions of the event-driven server, in memory: a random token (the `sid`
 * cookie) per user. A user is a session, as in the chat app; its JSON view is
 * serialized once and spliced into every event it causes.
 */
import { randomBytes } from 'node:crypto';

export interface LabUser {
  id: number;
  nick: string;
  /** `{"id","nick"}`, serialized once. */
  json: string;
}

export const SESSION_COOKIE = 'sid';

export class Sessions {
  private readonly byToken = new Map<string, LabUser>();
  private nextUserId = 1;

  /** A new user and its token (144 random bits, URL-safe, so it needs no cookie escaping). */
  create(nick: string): { token: string; user: LabUser } {
    const id = this.nextUserId++;
    const user: LabUser = { id, nick, json: `{"id":${id},"nick":${JSON.stringify(nick)}}` };
    const token = randomBytes(18).toString('base64url');
    this.byToken.set(token, user);
    return { token, user };
  }

  /** The user of the request's `Cookie` header, if its `sid` is known. */
  fromCookieHeader(header: string | undefined): LabUser | undefined {
    const token = cookieValue(header, SESSION_COOKIE);
    return token === undefined ? undefined : this.byToken.get(token);
  }

  /** `sid=...; HttpOnly; SameSite=Lax; Path=/` (docs/chat-api.md). */
  static setCookie(token: string): string {
    return `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Lax; Path=/`;
  }
}

/**
 * The first value of cookie `name` in a `Cookie` header (RFC 6265 §5.4), found
 * without splitting the header into a map: this runs on every request.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let at = 0;
  while (at < header.length) {
    while (header.charCodeAt(at) === 32 /* space */) at++;
    const end = header.indexOf(';', at);
    const stop = end === -1 ? header.length : end;
    if (header.startsWith(name, at) && header.charCodeAt(at + name.length) === 61 /* = */) {
      return header.slice(at + name.length + 1, stop).trim();
    }
    at = stop + 1;
  }
  return undefined;
}
