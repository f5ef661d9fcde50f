/**
 * Model 1 of the lab: Suspend & Resume, as Jetty Continuations do it.
 *
 * The poll handler (the "servlet") runs PollService.poll in its transaction.
 * News is answered at once. No news: the handler SUSPENDS the request (a
 * continuation registered on every polled room, with what is left of the hold
 * timeout) and returns; no thread, socket write or timer is tied to the
 * handler's stack. When the relay publishes an event of one of those rooms, or
 * the timeout fires, the continuation is RESUMED and the WHOLE handler runs
 * again from the start: it re-parses the query, polls SQLite again (so it must
 * be, and is, idempotent) and answers the events, or, expired, an empty answer.
 * The state that survives a re-dispatch is a request attribute, as in Jetty:
 * the connection ID the first run resolved, so re-runs do not issue new ones.
 *
 * The cost this model shows: every wake-up is a full handler run with a
 * SQLite write transaction (presence), for every suspended poll of the room.
 *
 * The race: an event published between a run's read and its suspend would wake
 * nobody. The per-room heads (chat-lab/room-heads.ts) close it: a run whose read
 * saw a room's last id below that room's published head re-dispatches at once
 * instead of suspending.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import { parseRoomCursors } from '../../server/cursors.js';
import { sessionOf } from '../../server/http/request-context.js';
import { requireSession } from '../../server/http/session.js';
import type { PollResult } from '../../server/poll-service.js';
import { createChatLab, type ChatLabCore, type LabModel } from './chat-lab/chat-lab.js';
import type { PublishedEvent } from './chat-lab/in-process-publisher.js';
import { parseCid, sendPollAnswer } from './chat-lab/poll-request.js';
import type { LabServerFactory } from './lab-server.js';

/**
 * - `running`: the handler is (about to be) dispatched;
 * - `suspended`: registered on its rooms, waiting for a notify or its timer;
 * - `done`: answered, failed, or the client went away.
 */
type ContinuationState = 'running' | 'suspended' | 'done';

/** One poll request across its dispatches. */
interface Continuation {
  req: Request;
  res: Response;
  /** Express's error path, still valid after the first dispatch returned. */
  next: NextFunction;
  /** The hold ends here (ms since the epoch), counted from the first dispatch, however many re-runs wake it. */
  deadline: number;
  /** Request attribute: the connection ID the first run resolved (issued or reused). */
  connectionId: string | undefined;
  /** Set when the hold timer fired: the next run answers even without events. */
  expired: boolean;
  state: ContinuationState;
  /** Rooms it is registered on while suspended. */
  rooms: string[];
  timer: NodeJS.Timeout | undefined;
}

class SuspendResumeModel implements LabModel {
  readonly pollRoutes: Router;
  /** Suspended continuations by room; a poll of several rooms is in each room's set. */
  private readonly byRoom = new Map<string, Set<Continuation>>();
  private suspendedCount = 0;
  /** Handler runs in progress, so close() can wait for them before the database closes. */
  private readonly inFlight = new Set<Promise<void>>();
  private closing = false;

  constructor(private readonly core: ChatLabCore) {
    this.pollRoutes = Router();
    this.pollRoutes.get('/poll', requireSession, (req, res, next) => this.dispatch(req, res, next));
  }

  parked(): number {
    return this.suspendedCount;
  }

  /** The relay's notify: resumes every continuation suspended on the events' rooms. */
  deliver(events: PublishedEvent[]): number {
    let resumed = 0;
    for (const { room } of events) {
      const waiting = this.byRoom.get(room);
      if (waiting === undefined) continue;
      // resume() deletes from this set while we iterate it, which a JS Set allows.
      for (const c of waiting) {
        this.resume(c);
        resumed++;
      }
    }
    return resumed;
  }

  async close(): Promise<void> {
    this.closing = true;
    const suspended = new Set<Continuation>();
    for (const set of this.byRoom.values()) for (const c of set) suspended.add(c);
    for (const c of suspended) this.answerEmpty(c);
    // A run in flight may be waiting on a busy database; the runs it schedules answer without reading.
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** First dispatch: the request becomes a continuation and the handler runs. */
  private dispatch(req: Request, res: Response, next: NextFunction): void {
    const c: Continuation = {
      req,
      res,
      next,
      deadline: this.core.now() + this.core.options.holdTimeoutS * 1000,
      connectionId: undefined,
      expired: false,
      state: 'running',
      rooms: [],
      timer: undefined,
    };
    res.on('close', () => {
      // The client went away while waiting: forget it (after an answer, writableFinished is true).
      if (!res.writableFinished) this.finish(c);
    });
    this.run(c);
  }

  /** One dispatch of the handler; errors take Express's error path, even on a re-run. */
  private run(c: Continuation): void {
    if (c.state === 'done') return;
    if (this.closing) {
      this.answerEmpty(c);
      return;
    }
    c.state = 'running';
    const running: Promise<void> = this.service(c)
      .catch((err: unknown) => {
        this.finish(c);
        if (!c.res.headersSent && !c.res.destroyed) c.next(err);
      })
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }

  /** The handler, from the start, every time: parse, poll, answer or suspend. */
  private async service(c: Continuation): Promise<void> {
    const cursors = parseRoomCursors(c.req.query.rooms);
    const queried = parseCid(c.req.query.cid);
    const result = await this.core.poll.poll(sessionOf(c.req), cursors, c.connectionId ?? queried);
    c.connectionId = result.connectionId;
    if (c.state === 'done') return;
    if (result.events.length > 0 || c.expired) {
      this.finish(c);
      sendPollAnswer(c.res, result.connectionId, result.events);
      return;
    }
    this.suspend(c, result.lastIds);
  }

  private suspend(c: Continuation, lastIds: PollResult['lastIds']): void {
    const remainingMs = c.deadline - this.core.now();
    if (this.closing || remainingMs <= 0) {
      // This run read nothing new and the hold is over: it is the timeout answer.
      this.answerEmpty(c);
      return;
    }
    if (this.core.heads.movedPast(lastIds)) {
      // Published after our read and before this suspend: nobody would wake us for it.
      this.redispatch(c);
      return;
    }
    c.state = 'suspended';
    c.rooms = lastIds.map((r) => r.room);
    for (const room of c.rooms) {
      let set = this.byRoom.get(room);
      if (set === undefined) {
        set = new Set();
        this.byRoom.set(room, set);
      }
      set.add(c);
    }
    c.timer = setTimeout(() => this.expire(c), remainingMs);
    this.suspendedCount++;
  }

  /** Notify: leave the rooms and run the handler again, off the relay's stack. */
  private resume(c: Continuation): void {
    if (c.state !== 'suspended') return;
    this.unsuspend(c);
    this.redispatch(c);
  }

  private expire(c: Continuation): void {
    if (c.state !== 'suspended') return;
    this.unsuspend(c);
    c.expired = true;
    this.run(c);
  }

  private redispatch(c: Continuation): void {
    c.state = 'running';
    // setImmediate, not a microtask: a notify can resume thousands of polls, and sockets should get turns between their runs.
    setImmediate(() => this.run(c));
  }

  /** `{"events":[],"connectionId"}` when the connection ID is known, else the socket is dropped. */
  private answerEmpty(c: Continuation): void {
    if (c.state === 'done') return;
    this.finish(c);
    if (c.connectionId !== undefined) sendPollAnswer(c.res, c.connectionId, []);
    else c.res.destroy();
  }

  private finish(c: Continuation): void {
    if (c.state === 'suspended') this.unsuspend(c);
    c.state = 'done';
  }

  private unsuspend(c: Continuation): void {
    clearTimeout(c.timer);
    c.timer = undefined;
    for (const room of c.rooms) {
      const set = this.byRoom.get(room);
      set?.delete(c);
      if (set?.size === 0) this.byRoom.delete(room);
    }
    c.rooms = [];
    this.suspendedCount--;
    c.state = 'running';
  }
}

/** The chat app whose idle polls suspend and re-run (model 1). `mode` is ignored. */
export const createSuspendResumeServer: LabServerFactory = (options) => createChatLab(options, (core) => new SuspendResumeModel(core));
