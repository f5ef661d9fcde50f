/**
 * The life of a held request (docs/protocol.md §4–§9): admitted with its hold
 * instruction, parked with a timeout (one shared wheel, hold-timeouts.ts), re-asked,
 * and answered exactly once — on delivery, timeout, supersession, close, re-ask
 * result, client abort or drain — through one cleanup path (`end`) that takes it off
 * the wheel and out of the indexes (parked-index.ts) and marks it `done` (which makes
 * its close listener a no-op) before anything is written.
 *
 * Per request it keeps only the `Held` record: the close listener is one function
 * shared by every response (it finds its request by response), and timeouts share
 * one timer (issue 15: memory per parked request).
 *
 * What a hold leads to is decided elsewhere (hold-decisions.ts); this file only
 * moves a request between states. It does no upstream I/O: re-asks go through
 * the injected `reask` callback (forward/reask.ts).
 */
import type { ClientResponse } from '../http/client-message.js';
import type { Logger } from 'pino';
import { resyncResponse, type ResyncReason } from '../../protocol/resync.js';
import type { Exchange } from '../forward/exchange.js';
import type { HoldInstruction } from '../forward/instruction.js';
import type { HeaderMap } from '../http/header-filter.js';
import { requestIdOf } from '../http/request-id.js';
import { isResponseClosed, prepareItem, writeItem, writeResponse, type HeldResponse, type ItemResponse } from '../http/response.js';
import type { ProxyTimers } from '../options.js';
import type { Held, HoldCounters, HoldObserver, HoldOutcome, ItemSource, ReaskFn, ReaskOutcome } from './held.js';
import { compactRequestHead } from './compact-head.js';
import { HoldTimeouts, NO_SLOT } from './hold-timeouts.js';
import type { ParkedIndex } from './parked-index.js';

/**
 * Every request the registry has owned, on its response (one per exchange), not in a WeakMap: every held poll
 * and re-poll adds one, and a WeakMap of them was 2-3% self time of the leased fan-out window (its inserts) plus an
 * ephemeron table the garbage collector walks on every pass (issue 15; request-id.ts does the same).
 */
const HELD = Symbol('held');
type WithHeld = { [HELD]?: Held };

function heldOf(res: object): Held | undefined {
  return (res as WithHeld)[HELD];
}

/** Answers given while shutting down tell the client (and Node) to drop the connection. */
const CONNECTION_CLOSE: HeaderMap = { connection: 'close' };

export interface HoldLifecycleDeps {
  index: ParkedIndex;
  counters: HoldCounters;
  reask: ReaskFn;
  maxReasks: number;
  observer: HoldObserver | undefined;
  logger: Logger;
  timers: ProxyTimers;
  /** The timeout wheel's slot width, ms (default HOLD_TIMEOUT_GRANULARITY_MS). */
  timeoutGranularityMs?: number;
}

export class HoldLifecycle {
  /** Responses with a request pipelined behind them on the same connection (docs §4 step 0). */
  private readonly pipelinedBehind = new WeakSet<ClientResponse>();
  private readonly index: ParkedIndex;
  private readonly counters: HoldCounters;
  private readonly log: Logger;
  private readonly timers: ProxyTimers;
  private readonly timeouts: HoldTimeouts<Held>;
  /** The one `close` listener of every owned response (`this` is the response). */
  private readonly onResponseClose: (this: ClientResponse) => void;
  private draining = false;

  constructor(private readonly deps: HoldLifecycleDeps) {
    this.index = deps.index;
    this.counters = deps.counters;
    this.log = deps.logger;
    this.timers = deps.timers;
    const timers = deps.timers;
    // On the monotonic clock: a wall-clock step (NTP, a resumed VM) must not move every parked request's deadline.
    const monotonic: ProxyTimers = {
      setTimeout: (fn, ms) => timers.setTimeout(fn, ms),
      clearTimeout: (handle) => timers.clearTimeout(handle),
      now: timers.monotonicNow === undefined ? () => timers.now() : () => timers.monotonicNow!(),
    };
    this.timeouts = new HoldTimeouts<Held>(
      monotonic,
      (held) => {
        this.counters.timeouts++;
        this.finish(held, 'timeout', held.instruction.timeoutResponse);
      },
      deps.timeoutGranularityMs,
    );
    const aborted = (held: Held) => this.aborted(held);
    this.onResponseClose = function (this: ClientResponse) {
      const held = heldOf(this);
      if (held !== undefined) aborted(held);
    };
  }

  /** Requests waiting on the timeout wheel (parked ones), and whether its one timer is armed. */
  get timeoutWheel(): { waiting: number; armed: boolean } {
    return { waiting: this.timeouts.size, armed: this.timeouts.armed };
  }

  /**
   * Takes a request the app answered with a hold instruction (first answer or re-ask) and
   * returns it in state `deciding`, or null when there is nothing to decide: it was already
   * answered or its client is gone, or it was answered here because a request is pipelined
   * behind it (docs §4 step 0) or the proxy is draining.
   */
  admit(exchange: Exchange, instruction: HoldInstruction): Held | null {
    let held = heldOf(exchange.res);
    if (held?.state === 'done') return null; // answered (drain) or aborted while its re-ask was in flight
    if (held === undefined) {
      if (isResponseClosed(exchange.res)) {
        this.counters.clientAborts++;
        return null;
      }
      held = this.adopt(exchange, instruction);
    } else {
      this.unindex(held); // leaves the re-asking set
      held.instruction = instruction;
    }
    held.state = 'deciding';
    if (this.pipelinedBehind.has(exchange.res)) {
      // A request waits behind this one on the same connection: never park it (docs §4 step 0).
      this.counters.pipelineReleases++;
      this.finish(held, 'pipelined', instruction.timeoutResponse);
      return null;
    }
    if (this.draining) {
      this.finish(held, 'drained', instruction.timeoutResponse, CONNECTION_CLOSE);
      return null;
    }
    return held;
  }

  /**
   * The client pipelined another request behind `res` on the same connection.
   * HTTP/1.1 answers in order, so that request would wait for the whole hold:
   * answer `res` now with its timeout response (the client re-polls), or never
   * park it if the app has not answered yet (docs §4 step 0).
   */
  releasePipelined(res: ClientResponse): void {
    this.pipelinedBehind.add(res);
    const held = heldOf(res);
    if (held === undefined || (held.state !== 'parked' && held.state !== 'reasking')) return;
    this.counters.pipelineReleases++;
    this.finish(held, 'pipelined', held.instruction.timeoutResponse);
  }

  /** Parks `held`: indexed, and answered with its timeout response when its slot on the wheel comes due. */
  park(held: Held): void {
    const { instruction } = held;
    held.state = 'parked';
    if (held.parkedAt === null) {
      held.parkedAt = this.timers.now();
      compactRequestHead(held.exchange.req); // once: a re-ask does not change the head
    }
    this.index.addParked(held);
    if (this.log.isLevelEnabled('debug')) this.log.debug(
      { requestId: requestIdOf(held.exchange.req), channels: instruction.channels.map((c) => c.name), connectionId: instruction.connectionId, timeoutMs: instruction.timeoutMs },
      'parked',
    );
    this.timeouts.add(held, instruction.timeoutMs);
  }

  /** Re-ask (docs §4.1): out of every index while the app answers again; at most `maxReasks` times. */
  reask(held: Held): void {
    const { exchange, instruction } = held;
    if (exchange.reasks >= this.deps.maxReasks) {
      this.answerResync(held, 'reask-limit');
      return;
    }
    this.unindex(held);
    held.state = 'reasking';
    this.index.addReasking(held);
    exchange.reasks++;
    this.counters.reasks++;
    const attempt = {};
    held.reaskAttempt = attempt;

    // Grip-Last as Pushpin sends it: each channel's prev-id, the client's position, which an app may answer from
    // (fastly/pushpin handler/httpsession.cpp). The channel's last id would be past items the client never got.
    const lastIds = new Map<string, string>();
    for (const sub of instruction.channels) {
      if (sub.prevId !== undefined) lastIds.set(sub.name, sub.prevId);
    }
    let outcome: Promise<ReaskOutcome>;
    try {
      outcome = this.deps.reask(exchange, lastIds);
    } catch (err) {
      this.log.error({ err, requestId: requestIdOf(exchange.req) }, 're-ask threw');
      outcome = Promise.resolve('failed');
    }
    outcome
      .catch((err: unknown) => {
        this.log.error({ err, requestId: requestIdOf(exchange.req) }, 're-ask rejected');
        return 'failed' as const;
      })
      .then((result) => {
        // A newer instruction, an answer or an abort got there first: nothing left to do.
        if (held.reaskAttempt !== attempt || held.state !== 'reasking') return;
        if (result === 'failed') this.answerResync(held, 'reask-failed');
        else this.finish(held, 'app', null); // the app's answer went straight to the client
      });
  }

  /**
   * Shutdown (docs §9): answers every parked or re-asking request with its timeout
   * response plus `Connection: close`, and later holds the same way (`admit`).
   * Returns how many requests were answered.
   */
  drain(): number {
    this.draining = true;
    let answered = 0;
    for (const held of this.index.allOpen()) {
      if (this.finish(held, 'drained', held.instruction.timeoutResponse, CONNECTION_CLOSE)) answered++;
    }
    return answered;
  }

  // --- answers -----------------------------------------------------------

  /** Delivers an item merged onto the held response (docs §6). False if the client was gone. */
  deliver(held: Held, item: ItemResponse, source?: ItemSource): boolean {
    // Prepared once per item (remembered per item object): a publish to N parked requests merges headers N times, not N objects.
    const ready = prepareItem(item);
    const written = this.end(held, 'delivered', (res) => writeItem(res, held.instruction.timeoutResponse, ready), ready.code);
    if (written) this.counters.deliveries++;
    if (written && source !== undefined) this.deps.observer?.itemWritten(source.kind, performance.now() - source.receivedAt);
    return written;
  }

  /** The resync answer (docs §8) for the request's channels. */
  answerResync(held: Held, reason: ResyncReason): void {
    this.counters.resyncs++;
    this.log.info({ requestId: requestIdOf(held.exchange.req), reason, connectionId: held.instruction.connectionId }, 'resync answer');
    this.finish(held, 'resync', resyncResponse(reason, held.instruction.channels.map((c) => c.name)));
  }

  /**
   * The one way out for a held request: leaves every index and the timeout wheel, is marked `done`
   * (its close listener then ignores it), then writes `response` (none when the client is gone).
   * Returns whether a response was written; idempotent.
   */
  finish(held: Held, outcome: HoldOutcome, response: HeldResponse | null, extraHeaders?: HeaderMap): boolean {
    if (response === null) return this.end(held, outcome, null);
    return this.end(held, outcome, (res) => writeResponse(res, response, extraHeaders), response.code);
  }

  /** `finish` with the write as a function (deliveries write a prepared item without a merged copy). */
  private end(held: Held, outcome: HoldOutcome, write: ((res: ClientResponse) => boolean) | null, status?: number): boolean {
    if (held.state === 'done') return false;
    this.unindex(held);
    // The shared close listener stays on the response: it does nothing for a request in state `done`, and taking
    // it off cost a new `_events` object per answer (EventEmitter's removeListener, 164 B a delivery, issue 15).
    held.state = 'done';
    const written = write !== null && write(held.exchange.res);
    const heldMs = held.parkedAt === null ? null : this.timers.now() - held.parkedAt;
    if (heldMs !== null) this.deps.observer?.holdEnded(outcome, heldMs);
    // Guarded: this runs for every answer, thousands per publish; the fields cost even when not logged.
    if (this.log.isLevelEnabled('debug')) this.log.debug(
      { requestId: requestIdOf(held.exchange.req), outcome, connectionId: held.instruction.connectionId, heldMs, status: written ? status : null },
      'hold answered',
    );
    return written;
  }

  // --- bookkeeping -------------------------------------------------------

  private adopt(exchange: Exchange, instruction: HoldInstruction): Held {
    const held: Held = {
      exchange,
      instruction,
      state: 'deciding',
      timeoutSlot: NO_SLOT,
      parkedAt: null,
      parkedBytes: 0,
      reaskAttempt: null,
      parkedPrev: null,
      parkedNext: null,
      channelLinks: null,
      timeoutPrev: null,
      timeoutNext: null,
      connection: null,
    };
    (exchange.res as WithHeld)[HELD] = held;
    exchange.res.on('close', this.onResponseClose);
    return held;
  }

  /** The response closed: unless that followed its answer, the client went away. */
  private aborted(held: Held): void {
    const { exchange } = held;
    // 'close' also follows a normal finish; only an unfinished response is an abort.
    if (exchange.res.writableFinished || held.state === 'done') return;
    this.counters.clientAborts++;
    this.log.debug({ requestId: requestIdOf(exchange.req), connectionId: held.instruction.connectionId, state: held.state }, 'client went away');
    this.finish(held, 'aborted', null);
  }

  /** Removes `held` from whichever index its state puts it in, and from the timeout wheel. */
  private unindex(held: Held): void {
    if (held.timeoutSlot !== NO_SLOT) this.timeouts.remove(held);
    this.index.remove(held);
    if (held.state === 'reasking') held.reaskAttempt = null;
  }
}
