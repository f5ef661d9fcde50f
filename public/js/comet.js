/*
 * comet.js: CometChat.Client, the chat client the UI talks to.
 *
 * It owns the joined rooms and their cursors (the id of the last event seen
 * per room), loads history, runs the poller and turns poll answers into
 * events for the UI:
 *
 *   'events'       (room, events)      new events, in id order, each exactly once
 *   'reset'        (room, page)        the room's state was (re)loaded: render page.events
 *                                      (oldest first) instead of what is shown; page.hasMore
 *   'room-removed' (room, err)         the server no longer lets us read the room
 *   'room-left'    (room)             we left it
 *   'session-lost' (err)              the session is gone; sign in again
 *   'poll-state'   (loopInfo)         a poll loop changed state (see Poller.snapshot)
 *   'bridge'       (origin, mode)     a shard bridge chose its mode
 *
 * Nothing is lost or shown twice across reconnects: the client resumes from its
 * cursors, never moves a cursor backwards, and drops events at or below it.
 * That also makes it safe for the tabs of one browser to share one poll
 * (comet-tabs.js): the poller is then a TabGroup, which polls only while this
 * tab leads and otherwise hands on what the leading tab relays.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;
  var Poller = CometChat.Poller;

  var NO_SHARDING = { baseDomain: null, shards: 0, limits: null };

  /**
   * options (all optional):
   *   strategy              'multiplex' (default) | 'per-room' | 'sharded'
   *   historyLimit          events loaded per room on join and resync, default 50
   *   backoffBaseMs, backoffCapMs, pollTimeoutMs   see Poller
   *   bridgeReadyTimeoutMs  how long a shard bridge may take to load, default 10000
   *   tabs                  'on' (default): tabs of this browser share one poll (comet-tabs.js);
   *                         'off': this tab polls for itself. Default from the page's `?tabs=`.
   *   delivery              'auto' (default): a stream read by EventSource where the browser has one
   *                         (comet-stream.js), else long-polling; 'sse' | 'xhr-stream' | 'iframe' | 'poll'
   *                         force one.
   *                         Streams need the multiplex strategy. Default from the page's `?transport=`.
   *   recycleMs, streamByteBudget   see Streamer (`byteBudget`)
   *   transport, window, timers, random   injectable (tests)
   */
  function Client(options) {
    options = options || {};
    this.options = options;
    this.window = options.window || window;
    this.requestedStrategy = options.strategy || 'multiplex';
    this.strategy = null;
    this.strategyNote = null;
    this.delivery = null;
    this.deliveryNote = null;
    this.historyLimit = options.historyLimit || 50;
    this.transport = options.transport || new CometChat.XhrTransport('');
    this.api = new CometChat.Api(this.transport);
    this.config = NO_SHARDING;
    this.user = null;
    this.rooms = {};
    this.order = [];
    this.bridges = {};
    this.shardOf = {};
    this.shardLoad = [];
    this.poller = null;
  }

  util.mixinEmitter(Client);

  /**
   * Reads the server's config, settles the strategy and asks for the current
   * session: callback(err, user or null). Must run after the DOM is ready
   * (shard bridges are iframes appended to document.body).
   */
  Client.prototype.start = function (callback) {
    var self = this;
    this.api.config(function (err, config) {
      // An app without /api/config (older version) simply offers no sharding.
      self.config = err ? NO_SHARDING : normalizeConfig(config);
      self.strategy = self.chooseStrategy();
      self.delivery = self.chooseDelivery();
      self.poller = self.createPoller();
      self.watchPage();
      self.api.session(function (sessionErr, user) {
        if (!sessionErr) self.user = user;
        callback(sessionErr, user);
      });
    });
  };

  function normalizeConfig(config) {
    var base = config && typeof config.baseDomain === 'string' && config.baseDomain !== '' ? config.baseDomain : null;
    var shards = config && typeof config.shards === 'number' && config.shards > 0 ? Math.floor(config.shards) : 0;
    // Input limits (absent from older apps: the UI then uses its defaults).
    var limits = config && config.limits && typeof config.limits === 'object' ? config.limits : null;
    return { baseDomain: base, shards: shards, limits: limits };
  }

  /** The requested strategy when it can run here; otherwise multiplex, with the reason in `strategyNote`. */
  Client.prototype.chooseStrategy = function () {
    var wanted = this.requestedStrategy;
    if (util.indexOf(Poller.STRATEGIES, wanted) === -1) {
      this.strategyNote = 'unknown strategy "' + wanted + '"';
      return 'multiplex';
    }
    if (wanted === 'sharded') {
      if (!this.config.baseDomain || this.config.shards === 0) {
        this.strategyNote = 'the server has no shard hosts configured';
        return 'multiplex';
      }
      // Shards are subdomains of the base domain; document.domain and the bridge's
      // origin check only work for a page on that domain too.
      if (!util.hostInDomain(this.window.location.hostname, this.config.baseDomain)) {
        this.strategyNote = 'this page is not served from ' + this.config.baseDomain;
        return 'multiplex';
      }
    }
    return wanted;
  };

  /**
   * How events arrive: a stream kind of comet-stream.js, or 'poll'. What was asked (option, or the page's
   * `?transport=`) when it can run here; otherwise the best that can, with the reason in `deliveryNote`.
   */
  Client.prototype.chooseDelivery = function () {
    var Streamer = CometChat.Streamer;
    var wanted = this.options.delivery || util.queryParam(this.window.location && this.window.location.search, 'transport') || 'auto';
    if (wanted === 'poll') return 'poll';
    if (!Streamer) {
      if (wanted !== 'auto') this.deliveryNote = 'comet-stream.js is not loaded';
      return 'poll';
    }
    if (wanted !== 'auto' && util.indexOf(Streamer.KINDS, wanted) === -1) {
      this.deliveryNote = 'unknown transport "' + wanted + '"';
      wanted = 'auto';
    }
    if (this.strategy !== 'multiplex') {
      // One stream carries every room; per-room and sharded loops are what those strategies are for.
      if (wanted !== 'auto') this.deliveryNote = 'streams need the multiplex strategy';
      return 'poll';
    }
    if (wanted === 'auto') return Streamer.supports('sse', this.window) ? 'sse' : 'poll';
    if (!Streamer.supports(wanted, this.window)) {
      this.deliveryNote = 'this browser cannot read a "' + wanted + '" stream';
      return 'poll';
    }
    return wanted;
  };

  /**
   * The poller: a Poller of the strategy (or a Streamer of the delivery, with the same interface), or with tab sharing a TabGroup that
   * has the same interface and runs that Poller only while this tab leads.
   */
  Client.prototype.createPoller = function () {
    var self = this;
    var o = this.options;
    var handler = {
      events: function (events) { self.ingest(events); },
      resync: function (rooms, done) { self.reloadRooms(rooms, done); },
      refused: function (rooms, err, done) { self.checkRefused(rooms, err, done); },
      sessionLost: function (err) { self.sessionLost(err); },
      state: function (info) { self.emit('poll-state', info); }
    };
    var cursorOf = function (room) { return self.rooms[room] ? self.rooms[room].cursor : 0; };
    function createPoller(loopHandler, loopCursorOf) {
      if (self.delivery !== 'poll') {
        return new CometChat.Streamer({
          kind: self.delivery,
          api: self.api,
          backoffBaseMs: o.backoffBaseMs,
          backoffCapMs: o.backoffCapMs,
          pollTimeoutMs: o.pollTimeoutMs,
          recycleMs: o.recycleMs,
          byteBudget: o.streamByteBudget,
          window: self.window,
          timers: o.timers,
          random: o.random,
          cursorOf: loopCursorOf,
          handler: loopHandler
        });
      }
      return new Poller({
        strategy: self.strategy,
        backoffBaseMs: o.backoffBaseMs,
        backoffCapMs: o.backoffCapMs,
        pollTimeoutMs: o.pollTimeoutMs,
        timers: o.timers,
        random: o.random,
        apiFor: function (room) { return self.apiFor(room); },
        release: function (room) { self.releaseShard(room); },
        cursorOf: loopCursorOf,
        handler: loopHandler
      });
    }
    var storage = this.tabsWanted() ? CometChat.TabGroup.usableStorage(this.window) : null;
    if (!storage) return createPoller(handler, cursorOf);
    return new CometChat.TabGroup({
      storage: storage,
      // Tabs of one user and one strategy share: another user's tab must not poll with our rooms.
      scope: function () { return (self.user ? self.user.id : 0) + ':' + self.strategy; },
      createPoller: createPoller,
      cursorOf: cursorOf,
      handler: handler,
      window: this.window,
      timers: o.timers,
      random: o.random
    });
  };

  /** Tab sharing unless switched off (option or `?tabs=off`) or comet-tabs.js is not loaded. */
  Client.prototype.tabsWanted = function () {
    var wanted = this.options.tabs || util.queryParam(this.window.location && this.window.location.search, 'tabs') || 'on';
    return wanted !== 'off' && !!CometChat.TabGroup;
  };

  /**
   * Stop polling while the page is hidden for navigation. Old browsers kept XHRs
   * open for a while after unload, and under the per-host cap the next page's
   * requests queued behind them; aborting also tells the proxy at once. `pagehide`
   * rather than `unload` keeps the page eligible for the back/forward cache, and
   * `pageshow` with `persisted` resumes it from there.
   */
  Client.prototype.watchPage = function () {
    var self = this;
    var win = this.window;
    if ('onpagehide' in win) {
      util.listen(win, 'pagehide', function () { self.poller.pause(); });
      util.listen(win, 'pageshow', function (event) {
        if (event && event.persisted) self.poller.resume();
      });
    } else {
      util.listen(win, 'unload', function () { self.poller.pause(); });
    }
  };

  // ---- hosts --------------------------------------------------------------

  /** The Api a poll loop uses: the page's own host, or (sharded) the least-used shard's bridge. */
  Client.prototype.apiFor = function (room) {
    if (room === null || this.strategy !== 'sharded') return this.api;
    var shard = 0;
    for (var i = 0; i < this.config.shards; i++) {
      if (!this.shardLoad[i]) this.shardLoad[i] = 0;
      if (this.shardLoad[i] < this.shardLoad[shard]) shard = i;
    }
    this.shardLoad[shard]++;
    this.shardOf[room] = shard;
    return new CometChat.Api(this.bridgeFor(shard));
  };

  Client.prototype.releaseShard = function (room) {
    if (!util.hasOwn(this.shardOf, room)) return;
    this.shardLoad[this.shardOf[room]]--;
    delete this.shardOf[room];
  };

  /** Shard n (0-based) is `c<n+1>.<baseDomain>` on the page's scheme and port. */
  Client.prototype.shardOrigin = function (shard) {
    var loc = this.window.location;
    return loc.protocol + '//c' + (shard + 1) + '.' + this.config.baseDomain + (loc.port ? ':' + loc.port : '');
  };

  Client.prototype.bridgeFor = function (shard) {
    var self = this;
    var origin = this.shardOrigin(shard);
    if (!this.bridges[origin]) {
      this.bridges[origin] = new CometChat.BridgeTransport({
        origin: origin,
        baseDomain: this.config.baseDomain,
        fallback: this.transport,
        readyTimeoutMs: this.options.bridgeReadyTimeoutMs,
        window: this.window,
        timers: this.options.timers,
        onMode: function (mode) { self.emit('bridge', origin, mode); }
      });
    }
    return this.bridges[origin];
  };

  // ---- session and rooms --------------------------------------------------

  Client.prototype.login = function (nick, callback) {
    var self = this;
    this.api.login(nick, function (err, user) {
      if (!err) self.user = user;
      callback(err, user);
    });
  };

  Client.prototype.listRooms = function (callback) {
    this.api.rooms(callback);
  };

  Client.prototype.createRoom = function (name, callback) {
    this.api.createRoom(name, callback);
  };

  Client.prototype.members = function (room, callback) {
    this.api.members(room, callback);
  };

  /** idempotencyKey optional (see Api.post); post(room, text, callback) still works. */
  Client.prototype.post = function (room, text, idempotencyKey, callback) {
    if (typeof idempotencyKey === 'function') return this.api.post(room, text, null, idempotencyKey);
    return this.api.post(room, text, idempotencyKey, callback);
  };

  /** An older page of a room's history (before event `beforeId`); cursors are not touched. */
  Client.prototype.olderHistory = function (room, beforeId, callback) {
    this.api.history(room, beforeId, this.historyLimit, callback);
  };

  Client.prototype.joined = function (room) {
    return util.hasOwn(this.rooms, room);
  };

  Client.prototype.joinRoom = function (room, callback) {
    this.joinRooms([room], callback);
  };

  /**
   * Joins rooms one after the other, loads each one's history, then starts
   * polling them all at once (in this order). callback(err, {joined, failed: [{room, error}]});
   * `err` only when the session is gone. Joining a room already joined is a no-op.
   */
  Client.prototype.joinRooms = function (rooms, callback) {
    var self = this;
    var joined = [];
    var failed = [];
    var i = 0;

    function next() {
      if (i === rooms.length) {
        self.poller.add(joined);
        callback(null, { joined: joined, failed: failed });
        return;
      }
      var room = rooms[i++];
      if (self.joined(room)) {
        next();
        return;
      }
      self.api.join(room, function (err) {
        if (err) return failedWith(room, err);
        self.rooms[room] = { name: room, cursor: 0 };
        self.order.push(room);
        self.reloadRoom(room, function (historyErr) {
          if (historyErr) {
            self.forget(room);
            return failedWith(room, historyErr);
          }
          joined.push(room);
          next();
        });
      });
    }

    function failedWith(room, err) {
      if (util.isSessionGone(err)) {
        self.poller.add(joined);
        callback(err, { joined: joined, failed: failed });
        return;
      }
      failed.push({ room: room, error: err });
      next();
    }

    next();
  };

  /**
   * Leaves a room. Its poll stops first: a poll naming a room we are no longer
   * in is refused as a whole (403). If the server cannot be told, polling resumes.
   */
  Client.prototype.leaveRoom = function (room, callback) {
    var self = this;
    if (!this.joined(room)) {
      callback(null);
      return;
    }
    this.poller.remove([room]);
    this.api.leave(room, function (err) {
      if (err && err.code !== 'APP_ERR_NOT_MEMBER' && err.code !== 'APP_ERR_ROOM_NOT_FOUND') {
        self.poller.add([room]);
        callback(err);
        return;
      }
      self.forget(room);
      self.emit('room-left', room);
      callback(null);
    });
  };

  Client.prototype.forget = function (room) {
    this.poller.remove([room]);
    delete this.rooms[room];
    var at = util.indexOf(this.order, room);
    if (at !== -1) this.order.splice(at, 1);
  };

  // ---- the stream -----------------------------------------------------------

  /**
   * Loads a room's newest history page and moves its cursor to the page's
   * cursor (never backwards), then emits 'reset'. The page and its cursor come
   * from one snapshot on the server, so polling from there misses nothing.
   */
  Client.prototype.reloadRoom = function (room, callback) {
    var self = this;
    this.api.history(room, null, this.historyLimit, function (err, page) {
      if (err) return callback(err);
      var state = self.rooms[room];
      if (!state) return callback(null);
      if (page.cursor > state.cursor) state.cursor = page.cursor;
      self.emit('reset', room, page);
      callback(null);
    });
  };

  /** Resync (docs/protocol.md §8): reload each room, dropping those we may no longer read. */
  Client.prototype.reloadRooms = function (rooms, done) {
    var self = this;
    var i = 0;
    function next() {
      if (i === rooms.length) return done(null);
      var room = rooms[i++];
      if (!self.joined(room)) return next();
      self.reloadRoom(room, function (err) {
        if (err && (err.code === 'APP_ERR_NOT_MEMBER' || err.code === 'APP_ERR_ROOM_NOT_FOUND')) {
          self.drop(room, err);
        } else if (err) {
          return done(err);
        }
        next();
      });
    }
    next();
  };

  /**
   * A poll was refused because of one of `rooms`. With one room it is that one;
   * with several, ask about each (the error names the room only in its message).
   */
  Client.prototype.checkRefused = function (rooms, refusal, done) {
    var self = this;
    if (rooms.length === 1) {
      this.drop(rooms[0], refusal);
      return done();
    }
    var i = 0;
    function next() {
      if (i === rooms.length) return done();
      var room = rooms[i++];
      self.api.members(room, function (err) {
        if (err && (err.code === 'APP_ERR_NOT_MEMBER' || err.code === 'APP_ERR_ROOM_NOT_FOUND')) self.drop(room, err);
        next();
      });
    }
    next();
  };

  Client.prototype.drop = function (room, err) {
    if (!this.joined(room)) return;
    this.forget(room);
    this.emit('room-removed', room, err);
  };

  /** New events from a poll: per room in id order, skipping any at or below the room's cursor. */
  Client.prototype.ingest = function (events) {
    var byRoom = {};
    var rooms = [];
    var sorted = events.slice().sort(function (a, b) { return a.id - b.id; });
    for (var i = 0; i < sorted.length; i++) {
      var event = sorted[i];
      var state = event && this.rooms[event.room];
      if (!state || typeof event.id !== 'number' || event.id <= state.cursor) continue;
      state.cursor = event.id;
      if (!byRoom[event.room]) {
        byRoom[event.room] = [];
        rooms.push(event.room);
      }
      byRoom[event.room].push(event);
    }
    for (var j = 0; j < rooms.length; j++) this.emit('events', rooms[j], byRoom[rooms[j]]);
  };

  Client.prototype.sessionLost = function (err) {
    if (this.user === null) return;
    this.user = null;
    this.poller.stop();
    this.rooms = {};
    this.order = [];
    this.emit('session-lost', err);
  };

  /** Everything a status line or a test wants to know, as plain data. */
  Client.prototype.status = function () {
    var rooms = [];
    for (var i = 0; i < this.order.length; i++) rooms.push({ name: this.order[i], cursor: this.rooms[this.order[i]].cursor });
    var bridges = {};
    for (var origin in this.bridges) {
      if (util.hasOwn(this.bridges, origin)) bridges[origin] = this.bridges[origin].mode;
    }
    return {
      requestedStrategy: this.requestedStrategy,
      strategy: this.strategy,
      strategyNote: this.strategyNote,
      delivery: this.delivery,
      deliveryNote: this.deliveryNote,
      config: { baseDomain: this.config.baseDomain, shards: this.config.shards },
      user: this.user,
      rooms: rooms,
      loops: this.poller ? this.poller.snapshot() : [],
      tabs: this.poller && this.poller.status ? this.poller.status() : { role: 'off', id: null, leader: null, relay: null },
      bridges: bridges
    };
  };

  CometChat.Client = Client;
  CometChat.createClient = function (options) {
    return new Client(options);
  };
}(this));
