/**
 * The fan-out of the event-driven server: parked polls, open streams, and
 * the one interval that times out holds and keeps streams alive.
 *
 * A commit marks its room dirty; one `setImmediate` flush per event-loop turn
 * then answers the room's parked polls and writes to its streams, so posts
 * that arrive together reach a reader in one response. Readers that were
 * exactly at the room's last flushed event (nearly all of them) share one
 * pre-built events string per room (polls) or one Buffer per room and format
 * (streams); anyone else gets a body built from its own cursors.
 */
import type { ServerResponse } from 'node:http';
import { COMET_CONNECTION_ID } from '../../../protocol/headers.js';
import { CoarseTimeouts } from './coarse-timeouts.js';
import { forEachPast, hasPast, type RoomCursorRef, type RoomLog } from './room-log.js';
import type { StreamFormat } from './stream-format.js';

/** Most events in one poll answer (docs/chat-api.md). */
export const POLL_MAX_EVENTS = 500;

/** A stream whose client reads slower than this many bytes behind is dropped (it reconnects and resumes). */
export const STREAM_MAX_BUFFERED_BYTES = 1024 * 1024;

/** A long-poll waiting for news: a small record in each of its rooms' `polls` and in one timeout bucket. */
export class ParkedPoll {
  bucket: Set<ParkedPoll> | null = null;
  done = false;
  constructor(
    readonly res: ServerResponse,
    readonly cid: string,
    readonly subs: RoomCursorRef[],
  ) {}
}

/** An open stream; its cursors advance as events are written. */
export class OpenStream {
  done = false;
  constructor(
    readonly res: ServerResponse,
    readonly format: StreamFormat,
    readonly subs: RoomCursorRef[],
  ) {}
}

export interface HubOptions {
  /** Hold timeout of a parked poll, ms. */
  holdTimeoutMs: number;
  /** Sweep period and hold-timeout granularity, ms. */
  tickMs: number;
  /** Interval of stream keepalives, ms. */
  keepaliveMs: number;
  /** Monotonic clock, ms. Default `performance.now`. */
  now?: () => number;
}

function pollBody(eventsJson: string, cid: string): string {
  return `{"events":[${eventsJson}],"connectionId":"${cid}"}`;
}

/** Writes a poll answer; the connection id goes in a header as well as the body (docs/chat-api.md). */
function sendPoll(res: ServerResponse, eventsJson: string, cid: string): void {
  if (res.headersSent || res.destroyed) return;
  const buf = Buffer.from(pollBody(eventsJson, cid));
  res.writeHead(200, [
    'Content-Type', 'application/json; charset=utf-8',
    'X-Content-Type-Options', 'nosniff',
    'Cache-Control', 'no-store',
    COMET_CONNECTION_ID, cid,
    'Content-Length', String(buf.length),
  ]);
  res.end(buf);
}

/** The events past `subs`' cursors, oldest first, at most `POLL_MAX_EVENTS`, joined with commas. */
function eventsPastJson(subs: readonly RoomCursorRef[]): string {
  const parts: string[] = [];
  forEachPast(subs, POLL_MAX_EVENTS, (_id, json) => parts.push(json));
  return parts.join(',');
}

/** Frames of every event past `subs`' cursors; moves the cursors past them. */
function framesPast(format: StreamFormat, subs: readonly RoomCursorRef[]): string {
  let out = '';
  forEachPast(subs, Infinity, (id, json, sub) => {
    out += format.frame(id, json);
    sub.cursor = id;
  });
  return out;
}

export class Hub {
  private readonly timeouts: CoarseTimeouts<ParkedPoll>;
  private readonly streams = new Set<OpenStream>();
  private readonly dirty = new Set<RoomLog>();
  private readonly now: () => number;
  private readonly keepaliveMs: number;
  private parkedPolls = 0;
  private flushImmediate: NodeJS.Immediate | null = null;
  private readonly sweepTimer: NodeJS.Timeout;
  private nextKeepaliveAt: number;
  private closed = false;

  constructor(options: HubOptions) {
    this.now = options.now ?? (() => performance.now());
    this.timeouts = new CoarseTimeouts({ timeoutMs: options.holdTimeoutMs, tickMs: options.tickMs, now: this.now });
    this.keepaliveMs = options.keepaliveMs;
    this.nextKeepaliveAt = this.now() + this.keepaliveMs;
    this.sweepTimer = setInterval(() => this.sweep(), options.tickMs);
    // The server's sockets keep the process alive, not this housekeeping.
    this.sweepTimer.unref();
  }

  /** Parked polls plus open streams. */
  get parked(): number {
    return this.parkedPolls + this.streams.size;
  }

  /**
   * Answers a poll: at once when there are events past its cursors, when
   * `park` is false (short polling) or the hub is closed; otherwise parks it.
   */
  poll(res: ServerResponse, cid: string, subs: RoomCursorRef[], park: boolean): void {
    if (!park || this.closed || hasPast(subs)) {
      sendPoll(res, eventsPastJson(subs), cid);
      return;
    }
    if (res.destroyed) return; // gone already: its 'close' would never come to unpark it
    const poll = new ParkedPoll(res, cid, subs);
    for (const sub of subs) sub.room.polls.add(poll);
    poll.bucket = this.timeouts.add(poll);
    this.parkedPolls++;
    res.once('close', () => {
      // Closed before we answered: the client went away, so its record must not linger in the rooms.
      if (!res.writableFinished) this.unpark(poll);
    });
  }

  /** Opens a stream: the format's prelude and every event past the cursors now, then each new event as committed. */
  openStream(res: ServerResponse, format: StreamFormat, subs: RoomCursorRef[]): void {
    res.writeHead(200, format.headers as string[]);
    const backlog = framesPast(format, subs);
    res.write(backlog === '' ? format.prelude : Buffer.concat([format.prelude, Buffer.from(backlog)]));
    if (this.closed) {
      res.end();
      return;
    }
    if (res.destroyed) return;
    // Cursors now stand at each room's last event, the unflushed ones included.
    const stream = new OpenStream(res, format, subs);
    for (const sub of subs) sub.room.streams.add(stream);
    this.streams.add(stream);
    res.once('close', () => this.dropStream(stream));
  }

  /** A new event was appended to `room`: readers hear of it at the end of this event-loop turn. */
  committed(room: RoomLog): void {
    this.dirty.add(room);
    if (this.flushImmediate === null) this.flushImmediate = setImmediate(() => this.flush());
  }

  /** Answers parked polls with empty events, ends streams, stops the interval. Committed events are delivered first. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.timeouts.drain((poll) => this.answer(poll, ''));
    for (const stream of [...this.streams]) {
      this.dropStream(stream);
      if (!stream.res.writableEnded) stream.res.end();
    }
  }

  private flush(): void {
    if (this.flushImmediate !== null) {
      clearImmediate(this.flushImmediate);
      this.flushImmediate = null;
    }
    for (const room of this.dirty) {
      this.flushPolls(room);
      this.flushStreams(room);
      room.flushedId = room.lastEventId;
    }
    this.dirty.clear();
  }

  private flushPolls(room: RoomLog): void {
    if (room.polls.size === 0) return;
    const start = room.indexAfter(room.flushedId);
    const fresh = room.length - start;
    let shared: string | null = null;
    // Deleting the current member while iterating a Set is safe: `answer` takes the poll out of every room.
    for (const poll of room.polls) {
      const sub = poll.subs[0]!;
      if (poll.subs.length === 1 && sub.cursor === room.flushedId && fresh <= POLL_MAX_EVENTS) {
        if (shared === null) {
          const parts: string[] = new Array(fresh);
          for (let i = 0; i < fresh; i++) parts[i] = room.jsonAt(start + i);
          shared = parts.join(',');
        }
        this.answer(poll, shared);
      } else if (hasPast(poll.subs)) {
        this.answer(poll, eventsPastJson(poll.subs));
      }
    }
  }

  private flushStreams(room: RoomLog): void {
    if (room.streams.size === 0) return;
    const start = room.indexAfter(room.flushedId);
    const end = room.length;
    // One Buffer per format for this room's fresh events, written to every stream that was at flushedId.
    const shared = new Map<StreamFormat, Buffer>();
    for (const stream of room.streams) {
      const sub = stream.subs[0]!;
      if (stream.subs.length === 1 && sub.cursor === room.flushedId) {
        let chunk = shared.get(stream.format);
        if (chunk === undefined) {
          let frames = '';
          for (let i = start; i < end; i++) frames += stream.format.frame(room.idAt(i), room.jsonAt(i));
          chunk = Buffer.from(frames);
          shared.set(stream.format, chunk);
        }
        sub.cursor = room.lastEventId;
        this.write(stream, chunk);
      } else {
        const frames = framesPast(stream.format, stream.subs);
        if (frames !== '') this.write(stream, frames);
      }
    }
  }

  private sweep(): void {
    this.timeouts.expire((poll) => this.answer(poll, ''));
    const now = this.now();
    if (now < this.nextKeepaliveAt) return;
    this.nextKeepaliveAt = now + this.keepaliveMs;
    for (const stream of this.streams) this.write(stream, stream.format.keepalive);
  }

  /** Writes to a stream; drops a client that lets too much pile up unread (it may reconnect and resume). */
  private write(stream: OpenStream, chunk: Buffer | string): void {
    const res = stream.res;
    res.write(chunk);
    if (res.writableLength > STREAM_MAX_BUFFERED_BYTES) {
      this.dropStream(stream);
      res.destroy();
    }
  }

  private answer(poll: ParkedPoll, eventsJson: string): void {
    if (!this.unpark(poll)) return;
    sendPoll(poll.res, eventsJson, poll.cid);
  }

  /** Takes a poll out of its rooms and its bucket; false when it already was. */
  private unpark(poll: ParkedPoll): boolean {
    if (poll.done) return false;
    poll.done = true;
    for (const sub of poll.subs) sub.room.polls.delete(poll);
    if (poll.bucket !== null) this.timeouts.remove(poll, poll.bucket);
    this.parkedPolls--;
    return true;
  }

  private dropStream(stream: OpenStream): void {
    if (stream.done) return;
    stream.done = true;
    for (const sub of stream.subs) sub.room.streams.delete(stream);
    this.streams.delete(stream);
  }
}
