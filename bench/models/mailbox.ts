/**
 * Model 2 of the lab: the Queue model, after the lighttpd mod_mailbox proposal.
 *
 * The web tier keeps a mailbox per client (per connection ID, mailbox/mailbox.ts)
 * and the app writes into mailboxes instead of answering requests: on each
 * committed event (outbox → OutboxRelay → in-process publisher, the path the
 * real app uses for the proxy) it puts the event into the mailbox of every
 * connection subscribed to the room: fan-out at write time
 * (mailbox/mailbox-store.ts). Reading is the tier's alone
 * (mailbox/mailbox-tier.ts): a poll with a known mailbox is answered from it,
 * without the app and without SQLite: the events past the poll's cursors, in
 * id order, or, if there are none, the poll parks on the mailbox until a write
 * or the hold timeout (mailbox/parked-reads.ts). The cursors acknowledge: events
 * at or below them are removed, so an answer lost on the way costs nothing, the
 * next poll (same cursors) gets the same events again. A poll the mailbox
 * cannot answer (the first one, a mailbox expired after `mailboxTtlMs` unread,
 * one that overflowed `mailboxMaxEvents`, other rooms or older cursors) goes to
 * the app (mailbox/app-poll-route.ts), which reads SQLite by the cursors and
 * opens the mailbox afresh. Nothing is ever lost, only read from SQLite.
 *
 * What makes it the Queue model: messages are queued per recipient, ahead of
 * any request, and a request only drains its own queue; the app never sees a
 * waiting request, and a write costs one queue append per subscriber.
 *
 * Why it cannot scale out: the mailboxes live in this one process's memory.
 * A second web process would hold other clients' mailboxes, so every app
 * write would have to reach the process holding each subscriber's mailbox
 * (a directory of connection → process, or every write broadcast to every
 * process), and every poll of a client would have to land on the process that
 * holds its mailbox (sticky routing); a process that restarts loses its
 * mailboxes and sends all its clients back to SQLite at once.
 */
import { createChatLab } from './chat-lab/chat-lab.js';
import type { LabServer, LabServerFactory, LabServerOptions } from './lab-server.js';
import { mailboxAppPollRoutes } from './mailbox/app-poll-route.js';
import { MailboxStore } from './mailbox/mailbox-store.js';
import { MailboxTier } from './mailbox/mailbox-tier.js';
import { ParkedReads } from './mailbox/parked-reads.js';

export interface MailboxServerOptions extends LabServerOptions {
  /** Drop a mailbox not read for this long, ms. Default twice the hold timeout. */
  mailboxTtlMs?: number;
  /** Events one mailbox holds; on overflow that client's next poll reads SQLite. Default 1000 (two poll batches). */
  mailboxMaxEvents?: number;
}

export const DEFAULT_MAILBOX_MAX_EVENTS = 1000;

/** Shortest presence refresh, ms: a mailbox is always answered from for at least this long after the app opened it. */
const MIN_APP_REFRESH_MS = 1000;

/**
 * Access control modes of the tier (docs/models.md, "Access control"): by default a poll is answered when its
 * `sid` cookie is the mailbox owner's (in memory, constant time); `session-check` also reads the session from
 * SQLite on every poll, as the app's middleware does, so an ended or expired session is refused at once.
 */
export const MAILBOX_MODES = ['session-check'] as const;

/** The chat app behind a mailbox tier (model 2). `mode`: undefined or one of `MAILBOX_MODES`. */
export const createMailboxServer = ((options: MailboxServerOptions): LabServer => {
  if (options.mode !== undefined && !(MAILBOX_MODES as readonly string[]).includes(options.mode)) {
    throw new RangeError(`mailbox mode must be one of ${MAILBOX_MODES.join(', ')} (or none), got ${JSON.stringify(options.mode)}`);
  }
  const sessionCheck = options.mode === 'session-check';
  const holdTimeoutMs = options.holdTimeoutS * 1000;
  const ttlMs = options.mailboxTtlMs ?? 2 * holdTimeoutMs;
  const maxEvents = options.mailboxMaxEvents ?? DEFAULT_MAILBOX_MAX_EVENTS;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`mailboxTtlMs must be a positive number of ms, got ${ttlMs}`);
  if (!Number.isInteger(maxEvents) || maxEvents < 1) throw new RangeError(`mailboxMaxEvents must be a positive integer, got ${maxEvents}`);

  return createChatLab(options, (core) => {
    const { now } = core;
    const pollBatchMax = core.options.pollBatchMax;
    const reads = new ParkedReads({ pollBatchMax, now });
    const mailboxes = new MailboxStore(
      {
        ttlMs,
        maxEvents,
        // The app polls presence only on its own path: often enough that a session stays online through one more
        // hold (the real app records it on every poll, at most a hold timeout apart; the presence window is wider).
        appRefreshMs: Math.max(MIN_APP_REFRESH_MS, core.options.presenceWindowMs - holdTimeoutMs),
        now,
      },
      reads,
    );
    const authorize = sessionCheck
      ? (token: string): boolean => {
          const found = core.sessions.authenticate(token);
          return found !== null && 'session' in found;
        }
      : undefined;
    const tier = new MailboxTier(mailboxes, reads, { holdTimeoutMs, pollBatchMax, now, ...(authorize === undefined ? {} : { authorize }) });
    const appPoll = mailboxAppPollRoutes({ poll: core.poll, mailboxes, reads, heads: core.heads, holdTimeoutMs });
    return {
      pollRoutes: appPoll.router,
      deliver: (events) => mailboxes.write(events),
      parked: () => reads.size,
      front: (req, res) => tier.handle(req, res),
      close: async () => {
        mailboxes.close();
        await appPoll.idle();
      },
    };
  });
}) satisfies LabServerFactory;
