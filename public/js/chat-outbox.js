/*
 * chat-outbox.js: the page's pending posts. A message leaves the post box at
 * once and waits here until the server has it; a post that got no answer, or a
 * 5xx/429, is sent again by itself, after a backoff (at least the answer's
 * Retry-After) or as soon as the connection is back (`kick`).
 *
 * Every attempt at one message carries the same `Idempotency-Key`, so a resend
 * whose first attempt was committed after all is answered with that message
 * (docs/chat-api.md, "Resending a post"): nothing is posted twice. Posts go
 * one at a time, in the order they were written, so they also arrive in order.
 *
 * Items: {key, room, text, state, error, attempt, retryAt}; state is
 * 'queued' | 'sending' | 'retrying' (waiting to resend) | 'failed' (refused:
 * will not be resent unless the user asks).
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;
  var errors = CometChat.errors;

  /** Resend backoff: full jitter from 500 ms, capped at 10 s (the poll's reconnect is usually sooner). */
  var RETRY_BASE_MS = 500;
  var RETRY_CAP_MS = 10000;

  /**
   * options:
   *   post(room, text, key, callback(err, event))   the API call
   *   onChange(item)         an item was added or changed state
   *   onSent(item, event)    the server has it (the item is gone from the outbox)
   *   onSessionLost(err)     a post was refused for want of a session
   *   timers, random, now    injectable; default window's timers, Math.random, util.now
   */
  function Outbox(options) {
    this.postFn = options.post;
    this.onChange = options.onChange || util.noop;
    this.onSent = options.onSent || util.noop;
    this.onSessionLost = options.onSessionLost || util.noop;
    this.timers = options.timers || {
      setTimeout: function (fn, ms) { return window.setTimeout(fn, ms); },
      clearTimeout: function (id) { window.clearTimeout(id); }
    };
    this.random = options.random || Math.random;
    this.now = options.now || util.now;
    this.items = [];
    this.inFlight = null;
    this.timer = null;
    this.seq = 0;
    // Keys are per session on the server; a random tab prefix keeps two tabs of one session apart.
    this.prefix = util.now().toString(36) + '-' + Math.floor(this.random() * 2176782336).toString(36);
  }

  /** Queues a message and sends it when its turn comes; returns the item. */
  Outbox.prototype.add = function (room, text) {
    var item = { key: this.prefix + '-' + (++this.seq), room: room, text: text, state: 'queued', error: null, attempt: 0, retryAt: 0 };
    this.items.push(item);
    this.onChange(item);
    this.pump();
    return item;
  };

  Outbox.prototype.find = function (key) {
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].key === key) return this.items[i];
    }
    return null;
  };

  /** Items of one room, oldest first (for showing them in its pane). */
  Outbox.prototype.inRoom = function (room) {
    var out = [];
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].room === room) out.push(this.items[i]);
    }
    return out;
  };

  /** The next item to send: the oldest not refused. */
  Outbox.prototype.head = function () {
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].state !== 'failed') return this.items[i];
    }
    return null;
  };

  Outbox.prototype.pump = function () {
    if (this.inFlight || this.timer !== null) return;
    var item = this.head();
    if (item) this.send(item);
  };

  Outbox.prototype.send = function (item) {
    var self = this;
    this.inFlight = item;
    item.state = 'sending';
    this.onChange(item);
    this.postFn(item.room, item.text, item.key, function (err, event) {
      if (self.inFlight !== item) return; // dropped meanwhile (signed out)
      self.inFlight = null;
      if (!err) {
        self.remove(item);
        self.onSent(item, event);
      } else if (util.isSessionGone(err)) {
        self.fail(item, err);
        self.onSessionLost(err);
        return;
      } else if (errors.retryable(err)) {
        self.retryLater(item, err);
        return;
      } else {
        self.fail(item, err);
      }
      self.pump();
    });
  };

  Outbox.prototype.retryLater = function (item, err) {
    var self = this;
    var delay = util.backoffMs(item.attempt, RETRY_BASE_MS, RETRY_CAP_MS, this.random);
    var floor = typeof err.retryAfterMs === 'number' ? err.retryAfterMs : 0;
    if (floor > delay) delay = floor;
    item.attempt++;
    item.state = 'retrying';
    item.error = err;
    item.retryAt = this.now() + delay;
    // A kick may not resend before the server's Retry-After: it asked for that pause.
    item.notBefore = this.now() + floor;
    this.onChange(item);
    this.timer = this.timers.setTimeout(function () {
      self.timer = null;
      self.pump();
    }, delay);
  };

  Outbox.prototype.fail = function (item, err) {
    item.state = 'failed';
    item.error = err;
    this.onChange(item);
  };

  /**
   * The connection is back (a poll got through, the browser went online): resend
   * now rather than at the end of the backoff, unless Retry-After said to wait.
   */
  Outbox.prototype.kick = function () {
    var item = this.head();
    if (this.timer === null || !item || item.state !== 'retrying' || this.now() < item.notBefore) return;
    this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.pump();
  };

  /** The user asks to send a refused message again (same key: still at most once). */
  Outbox.prototype.retry = function (key) {
    var item = this.find(key);
    if (!item || item.state !== 'failed') return;
    item.state = 'queued';
    item.error = null;
    item.attempt = 0;
    this.onChange(item);
    this.pump();
  };

  /** The user gives up on a refused message. */
  Outbox.prototype.discard = function (key) {
    var item = this.find(key);
    if (item && item.state === 'failed') this.remove(item);
  };

  Outbox.prototype.remove = function (item) {
    var at = util.indexOf(this.items, item);
    if (at !== -1) this.items.splice(at, 1);
  };

  /** Forgets everything (signed out): answers still on their way are ignored. */
  Outbox.prototype.clear = function () {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.inFlight = null;
    this.items = [];
  };

  Outbox.prototype.sending = function () {
    return this.inFlight !== null;
  };

  CometChat.Outbox = Outbox;
}(this));
