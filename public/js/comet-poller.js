/*
 * comet-poller.js: the long-poll loops.
 *
 * Strategies (how many loops, where each polls):
 *  - multiplex: one loop for every joined room (`GET /api/poll?rooms=a:1,b:2`),
 *    so one held connection per page whatever the number of rooms. The default.
 *  - per-room: one loop per room on the page's own host. Shows the problem:
 *    browsers allow 6 connections per host name (Chromium), so from the 7th
 *    room on polls queue in the browser, and so does every other request.
 *  - sharded: one loop per room, each through a shard host's bridge; the
 *    client decides the host (`apiFor`).
 *
 * Each loop keeps its own connection ID: the proxy parks one request per ID,
 * and a second hold on the same ID releases the first. Cursors live in the
 * client (`cursorOf`); a loop only reads them, so a lost answer costs nothing:
 * the next poll asks again from the same cursors.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;

  var STRATEGIES = ['multiplex', 'per-room', 'sharded'];
  var MULTIPLEX_KEY = '*';

  /**
   * options:
   *   strategy         one of STRATEGIES
   *   apiFor(room)     the Api a room's loop polls through (room null: the multiplexed loop)
   *   release(room)    called when a room's own loop is gone (frees its shard); optional
   *   cursorOf(room)   the room's cursor (last event id seen)
   *   handler          { events(events), resync(rooms, done(err)), refused(rooms, err, done()),
   *                      sessionLost(err), state(loopInfo) }
   *   backoffBaseMs    first retry ceiling, default 250
   *   backoffCapMs     largest retry ceiling, default 10000
   *   pollTimeoutMs    a poll unanswered this long is abandoned and retried, default 75000
   *                    (the app holds 55 s; a proxy or NAT that drops the socket silently
   *                    would otherwise leave the loop waiting forever)
   *   timers, random   injectable; default window's timers and Math.random
   */
  function Poller(options) {
    if (util.indexOf(STRATEGIES, options.strategy) === -1) {
      throw util.error('COMET_ERR_BAD_OPTION', 'strategy must be one of ' + STRATEGIES.join(', '));
    }
    this.strategy = options.strategy;
    this.apiFor = options.apiFor;
    this.release = options.release || util.noop;
    this.cursorOf = options.cursorOf;
    this.handler = options.handler;
    this.backoffBaseMs = options.backoffBaseMs || 250;
    this.backoffCapMs = options.backoffCapMs || 10000;
    this.pollTimeoutMs = options.pollTimeoutMs || 75000;
    this.timers = options.timers || {
      setTimeout: function (fn, ms) { return window.setTimeout(fn, ms); },
      clearTimeout: function (id) { window.clearTimeout(id); }
    };
    this.random = options.random || Math.random;
    this.loops = {};
  }

  Poller.STRATEGIES = STRATEGIES;

  Poller.prototype.multiplexed = function () {
    return this.strategy === 'multiplex';
  };

  /** Starts polling `rooms` (names), in order; rooms already polled are skipped. */
  Poller.prototype.add = function (rooms) {
    var fresh = [];
    for (var i = 0; i < rooms.length; i++) {
      if (!this.has(rooms[i]) && util.indexOf(fresh, rooms[i]) === -1) fresh.push(rooms[i]);
    }
    if (fresh.length === 0) return;
    if (this.multiplexed()) {
      var loop = this.loops[MULTIPLEX_KEY];
      if (loop) {
        loop.rooms = loop.rooms.concat(fresh);
        loop.roomsChanged();
      } else {
        loop = this.loops[MULTIPLEX_KEY] = new Loop(this, MULTIPLEX_KEY, fresh, this.apiFor(null));
        loop.start();
      }
      return;
    }
    for (var j = 0; j < fresh.length; j++) {
      var own = this.loops[fresh[j]] = new Loop(this, fresh[j], [fresh[j]], this.apiFor(fresh[j]));
      own.start();
    }
  };

  /** Stops polling `rooms`: their loops end (in-flight polls aborted), or the multiplexed poll is re-issued without them. */
  Poller.prototype.remove = function (rooms) {
    for (var i = 0; i < rooms.length; i++) {
      var room = rooms[i];
      if (this.multiplexed()) {
        var loop = this.loops[MULTIPLEX_KEY];
        var at = loop ? util.indexOf(loop.rooms, room) : -1;
        if (at === -1) continue;
        loop.rooms = loop.rooms.slice(0, at).concat(loop.rooms.slice(at + 1));
        if (loop.rooms.length === 0) {
          loop.stop();
          delete this.loops[MULTIPLEX_KEY];
        } else {
          loop.roomsChanged();
        }
      } else if (this.loops[room]) {
        this.loops[room].stop();
        delete this.loops[room];
        this.release(room);
      }
    }
  };

  Poller.prototype.has = function (room) {
    if (this.multiplexed()) {
      var loop = this.loops[MULTIPLEX_KEY];
      return !!loop && util.indexOf(loop.rooms, room) !== -1;
    }
    return util.hasOwn(this.loops, room);
  };

  /** Aborts every poll (page hidden or unloading); `resume()` starts them again. */
  Poller.prototype.pause = function () {
    this.eachLoop(function (loop) { loop.stop(); });
  };

  Poller.prototype.resume = function () {
    this.eachLoop(function (loop) { loop.start(); });
  };

  /** Ends every loop for good (signed out). */
  Poller.prototype.stop = function () {
    var rooms = [];
    this.eachLoop(function (loop) { rooms = rooms.concat(loop.rooms); });
    this.remove(rooms);
  };

  Poller.prototype.eachLoop = function (fn) {
    for (var key in this.loops) {
      if (util.hasOwn(this.loops, key)) fn(this.loops[key]);
    }
  };

  /** [{key, rooms, state, connectionId, attempt, error}] for status displays and tests. */
  Poller.prototype.snapshot = function () {
    var out = [];
    this.eachLoop(function (loop) { out.push(loop.info()); });
    return out;
  };

  /**
   * One loop: poll, handle the answer, poll again. States: 'polling' (a request
   * in flight), 'waiting' (backing off after a failure), 'resync' (reloading
   * history after a resync answer), 'checking' (finding out which rooms were
   * refused), 'stopped'.
   */
  function Loop(poller, key, rooms, api) {
    this.poller = poller;
    /** The recovery methods' name for it (comet-stream.js's loops use the same). */
    this.owner = poller;
    this.key = key;
    this.rooms = rooms;
    this.api = api;
    this.cid = null;
    this.state = 'idle';
    this.attempt = 0;
    this.lastError = null;
    this.call = null;
    this.retryTimer = null;
    this.watchdog = null;
    /** Bumped by stop(), so callbacks of work started before it are ignored. */
    this.epoch = 0;
  }

  Loop.prototype.info = function () {
    return {
      key: this.key,
      rooms: this.rooms.slice(),
      state: this.state,
      connectionId: this.cid,
      attempt: this.attempt,
      error: this.lastError ? this.lastError.code : null
    };
  };

  Loop.prototype.start = function () {
    if (this.state !== 'idle' && this.state !== 'stopped') return;
    this.pollNow();
  };

  Loop.prototype.stop = function () {
    this.epoch++;
    this.cancel();
    this.setState('stopped', null);
  };

  /** Aborts the request in flight and clears the timers; the callback of an aborted request never runs. */
  Loop.prototype.cancel = function () {
    var timers = this.poller.timers;
    if (this.call) {
      if (this.call.handle) this.call.handle.abort();
      this.call = null;
    }
    if (this.retryTimer !== null) timers.clearTimeout(this.retryTimer);
    if (this.watchdog !== null) timers.clearTimeout(this.watchdog);
    this.retryTimer = null;
    this.watchdog = null;
  };

  /** The multiplexed loop's room set changed: re-issue the poll at once (a parked poll would not see the new rooms). */
  Loop.prototype.roomsChanged = function () {
    if (this.state === 'polling') this.pollNow();
    // 'waiting': the retry timer polls with the new set; 'resync'/'checking' poll when done.
  };

  Loop.prototype.pollNow = function () {
    var self = this;
    var poller = this.poller;
    this.cancel();
    var cursors = [];
    for (var i = 0; i < this.rooms.length; i++) cursors.push({ room: this.rooms[i], cursor: poller.cursorOf(this.rooms[i]) });
    this.setState('polling', this.lastError);
    var call = this.call = { handle: null };
    // Armed before sending, so that even a transport answering synchronously leaves no stray watchdog.
    this.watchdog = poller.timers.setTimeout(function () {
      self.watchdog = null;
      if (self.call !== call) return;
      self.cancel();
      self.retryLater(util.error('COMET_ERR_POLL_TIMEOUT', 'no answer to the poll in ' + poller.pollTimeoutMs + ' ms'));
    }, poller.pollTimeoutMs);
    var handle = this.api.poll(cursors, this.cid, function (err, body, status, headers) {
      if (self.call !== call) return;
      self.cancel();
      self.onAnswer(err, body, headers);
    });
    if (this.call === call) call.handle = handle;
  };

  Loop.prototype.onAnswer = function (err, body, headers) {
    if (err) {
      this.onError(err);
      return;
    }
    // docs/protocol.md §8: the proxy could not keep its promise; reload before polling again.
    if (body.resync || headers['comet-resync']) {
      this.resync(this.resyncRooms(body.resync && body.resync.channels));
      return;
    }
    if (!util.isArray(body.events)) {
      this.retryLater(util.error('COMET_ERR_BAD_RESPONSE', 'a poll answer without events'));
      return;
    }
    var cid = body.connectionId || headers['comet-connection-id'];
    if (cid) this.cid = cid;
    this.attempt = 0;
    this.lastError = null;
    this.poller.handler.events(body.events);
    // The handler may have stopped us (e.g. the UI left a room in reaction).
    if (this.state === 'polling' && !this.call) this.pollNow();
  };

  /** Channels `room:<name>` named by a resync answer, limited to this loop's rooms; all of them when none is named. */
  Loop.prototype.resyncRooms = function (channels) {
    var rooms = [];
    if (util.isArray(channels)) {
      for (var i = 0; i < channels.length; i++) {
        var name = String(channels[i]).replace(/^room:/, '');
        if (util.indexOf(this.rooms, name) !== -1) rooms.push(name);
      }
    }
    return rooms.length > 0 ? rooms : this.rooms.slice();
  };

  /**
   * What a loop does when a request fails, shared by the poll loop here and the stream loop
   * (comet-stream.js mixes it in). A loop has `owner` (its Poller or Streamer: handler, timers, backoff
   * settings) and `restart()` (poll again, or reopen), besides rooms, cid, epoch, attempt, lastError,
   * cancel(), stop() and setState().
   */
  var recovery = {
    onError: function (err) {
      var self = this;
      var epoch = this.epoch;
      switch (util.isSessionGone(err) ? 'APP_ERR_NO_SESSION' : err.code) {
        case 'APP_ERR_NO_SESSION':
          // Also an expired or signed-out session: retrying would only repeat the 401.
          this.stop();
          this.owner.handler.sessionLost(err);
          return;
        case 'APP_ERR_BAD_CONNECTION_ID':
        case 'APP_ERR_FOREIGN_CONNECTION_ID':
        case 'PROXY_ERR_CONNECTION_CLOSED':
          // The ID is unusable (malformed, another session's, or closed through the proxy's
          // control API, docs/protocol.md §7.3): poll without one to get a new one.
          this.cid = null;
          this.retryLater(err);
          return;
        case 'APP_ERR_NOT_MEMBER':
        case 'APP_ERR_ROOM_NOT_FOUND':
          // One of our rooms was left elsewhere or deleted; the handler finds out which
          // (the error names it only in prose) and removes it, then we poll again.
          this.setState('checking', err);
          this.owner.handler.refused(this.rooms.slice(), err, function () {
            if (self.epoch === epoch) self.retryLater(err);
          });
          return;
        case 'APP_ERR_BAD_CURSOR':
          this.resync(this.rooms.slice());
          return;
        default:
          // No answer, 5xx, or a proxy refusing while it restarts: back off and retry.
          this.retryLater(err);
      }
    },

    resync: function (rooms) {
      var self = this;
      var epoch = this.epoch;
      this.setState('resync', this.lastError);
      this.owner.handler.resync(rooms, function (err) {
        if (self.epoch !== epoch) return;
        if (err) {
          self.retryLater(err, function () { self.resync(rooms); });
          return;
        }
        self.attempt = 0;
        self.restart();
      });
    },

    /**
     * Waits a full-jitter exponential delay, then runs `next` (default: restart). A refusal
     * with Retry-After (429, 503: the proxy or app is full or restarting) waits at least
     * that long: retrying sooner would only be refused again and add to the load.
     */
    retryLater: function (err, next) {
      var self = this;
      var owner = this.owner;
      this.cancel();
      var delay = util.backoffMs(this.attempt, owner.backoffBaseMs, owner.backoffCapMs, owner.random);
      if (err && typeof err.retryAfterMs === 'number' && err.retryAfterMs > delay) delay = err.retryAfterMs;
      this.attempt++;
      // A clean end (a stream closed by the server) retries without an error and keeps the last one shown.
      if (err) this.lastError = err;
      this.setState('waiting', this.lastError);
      this.retryTimer = owner.timers.setTimeout(function () {
        self.retryTimer = null;
        if (next) next();
        else self.restart();
      }, delay);
    }
  };

  for (var method in recovery) {
    if (util.hasOwn(recovery, method)) Loop.prototype[method] = recovery[method];
  }

  Loop.prototype.restart = function () {
    this.pollNow();
  };

  Loop.prototype.setState = function (state, err) {
    this.state = state;
    this.lastError = err || null;
    this.poller.handler.state(this.info());
  };

  CometChat.Poller = Poller;
  CometChat.loopRecovery = recovery;
}(this));
