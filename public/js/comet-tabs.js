/*
 * comet-tabs.js: one poll for all tabs of a browser.
 *
 * Every tab of a page polls for itself otherwise, and each held poll takes one
 * of the browser's 6 connections per host name (shared by every tab of that
 * host): the seventh tab stalls. So the tabs of one session (same origin, same
 * signed-in user, same strategy) elect a leader through localStorage, which is
 * shared by them and tells the others of each change with a `storage` event:
 *
 *  - lease   `<prefix>lease` = {id, at}: the leader rewrites it every
 *            `heartbeatMs` (1 s). A follower that finds it missing (the leader
 *            left: it removes its lease on pagehide) or silent for `leaseMs`
 *            (3 s: the leader crashed or hangs) claims it by writing its own id,
 *            and leads if the lease still names it `claimMs` later. Claims at the
 *            same moment settle on the smallest tab id (ids start with the tab's
 *            start time, so the oldest tab wins): a claimant that sees a smaller
 *            id yields, one that sees a larger id writes its own again. A leader
 *            that finds another id in the lease steps down.
 *  - rooms   `<prefix>tab:<id>` = {rooms: [[room, cursor], ...], at}: each tab's
 *            rooms and cursors, rewritten on every change and heartbeat. The
 *            leader polls the union of the fresh records (its own rooms included)
 *            with one Poller of the page's strategy.
 *  - relay   the leader sends what its poll brings to every tab: over a
 *            BroadcastChannel where the browser has one, else through the
 *            `<prefix>relay` key. Messages: events, resync, refused, session-lost
 *            (the poll's handler calls, replayed by each follower on its own
 *            client) and state (the leader's loops, for the status line).
 *
 * Nothing is lost or doubled: relayed events carry their ids, which are the
 * cursors, and each tab's client drops events at or below its own cursor. The
 * leader polls each room from the OLDEST cursor any tab announced for it (a
 * new leader from every fresh record; a room a tab adds lowers the cursor to
 * that tab's), so a tab that is behind is caught up and the others drop the
 * repeats. Posts and history stay per tab (direct requests).
 *
 * No usable localStorage (old browsers, privacy modes, a quota error later):
 * the tab polls for itself, as without this file.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;

  var PREFIX = 'comet-chat:tabs:';

  /** localStorage when it can be written here, else null (missing, or throwing in privacy modes). */
  function usableStorage(win) {
    try {
      var storage = win.localStorage;
      if (!storage) return null;
      var probe = PREFIX + 'probe';
      storage.setItem(probe, '1');
      storage.removeItem(probe);
      return storage;
    } catch (e) {
      return null;
    }
  }

  /** Start time first (fixed width, base 36), so ids sort by age; random after it to break ties. */
  function newTabId(now, random) {
    var time = now.toString(36);
    while (time.length < 10) time = '0' + time;
    return time + '-' + Math.floor(random() * 0x7fffffff).toString(36);
  }

  /**
   * options:
   *   storage          localStorage (from usableStorage)
   *   scope()          the group this tab belongs to (user and strategy), read when polling starts
   *   createPoller(handler, cursorOf)   a Poller of the page's strategy with these two
   *   cursorOf(room)   this tab's cursor for a room it shows
   *   handler          the client's poll handler: events, resync, refused, sessionLost, state
   *   heartbeatMs      lease and record renewal, default 1000
   *   leaseMs          silence after which a lease or a record is stale, default 3000
   *   claimMs          how long a claim settles before the claimant leads, default 200
   *   window, timers ({setTimeout, clearTimeout}), now(), random()   injectable
   */
  function TabGroup(options) {
    var win = this.window = options.window || window;
    this.storage = options.storage;
    this.scope = options.scope;
    this.createPoller = options.createPoller;
    this.cursorOf = options.cursorOf;
    this.handler = options.handler;
    this.heartbeatMs = options.heartbeatMs || 1000;
    this.leaseMs = options.leaseMs || 3000;
    this.claimMs = options.claimMs || 200;
    this.timers = options.timers || {
      setTimeout: function (fn, ms) { return win.setTimeout(fn, ms); },
      clearTimeout: function (id) { win.clearTimeout(id); }
    };
    this.now = options.now || util.now;
    this.id = newTabId(this.now(), options.random || Math.random);
    /** 'idle' (no rooms) | 'claiming' | 'leader' | 'follower' | 'paused' | 'solo' (polls alone) */
    this.role = 'idle';
    this.rooms = [];
    this.prefix = null;
    this.poller = null;
    /** Leader: the cursor each polled room is polled from, and the rooms each other tab announced. */
    this.cursors = {};
    this.announced = {};
    /** Follower: the leader's loops, for status displays. */
    this.leaderLoops = [];
    this.leaderId = null;
    this.heartbeat = null;
    this.claimTimer = null;
    this.channel = null;
    this.seq = 0;
    this.unlisten = util.noop;
  }

  TabGroup.usableStorage = usableStorage;

  // ---- the Poller interface the client uses ---------------------------------

  TabGroup.prototype.add = function (rooms) {
    var fresh = [];
    for (var i = 0; i < rooms.length; i++) {
      if (!this.has(rooms[i]) && util.indexOf(fresh, rooms[i]) === -1) fresh.push(rooms[i]);
    }
    if (fresh.length === 0) return;
    this.rooms = this.rooms.concat(fresh);
    if (this.role === 'solo') {
      this.poller.add(fresh);
      return;
    }
    if (this.role === 'idle') {
      this.join();
      return;
    }
    this.writeRecord();
    this.reconcile();
  };

  TabGroup.prototype.remove = function (rooms) {
    var kept = [];
    for (var i = 0; i < this.rooms.length; i++) {
      if (util.indexOf(rooms, this.rooms[i]) === -1) kept.push(this.rooms[i]);
    }
    if (kept.length === this.rooms.length) return;
    this.rooms = kept;
    if (this.role === 'solo') {
      this.poller.remove(rooms);
      return;
    }
    if (this.role === 'leader' || this.role === 'follower' || this.role === 'claiming') {
      this.writeRecord();
      this.reconcile();
    }
  };

  TabGroup.prototype.has = function (room) {
    return util.indexOf(this.rooms, room) !== -1;
  };

  /** Page hidden for navigation (or closing): leave the group at once, so a follower takes over now. */
  TabGroup.prototype.pause = function () {
    if (this.role === 'solo') {
      this.poller.pause();
      return;
    }
    if (this.role === 'idle' || this.role === 'paused') return;
    this.leave();
    this.role = 'paused';
  };

  TabGroup.prototype.resume = function () {
    if (this.role === 'solo') this.poller.resume();
    else if (this.role === 'paused' && this.rooms.length > 0) this.join();
  };

  /** Signed out: leave the group and forget the rooms. */
  TabGroup.prototype.stop = function () {
    if (this.role === 'solo') {
      this.poller.stop();
    } else if (this.role !== 'idle' && this.role !== 'paused') {
      this.leave();
    }
    if (this.role !== 'solo') this.role = 'idle';
    this.rooms = [];
  };

  /** The loops that poll for this tab: its own (leader, solo) or the leader's as last relayed (follower). */
  TabGroup.prototype.snapshot = function () {
    if (this.poller) return this.poller.snapshot();
    return this.role === 'follower' ? this.leaderLoops.slice() : [];
  };

  /** {role, id, leader} for status displays and tests. */
  TabGroup.prototype.status = function () {
    var leader = this.role === 'leader' ? this.id : this.leaderId;
    return { role: this.role, id: this.id, leader: leader, relay: this.channel ? 'BroadcastChannel' : 'localStorage' };
  };

  // ---- joining and leaving ------------------------------------------------------

  TabGroup.prototype.join = function () {
    var self = this;
    this.prefix = PREFIX + this.scope() + ':';
    this.openChannel();
    this.unlisten();
    this.unlisten = util.listen(this.window, 'storage', function (event) { self.onStorage(event); });
    this.role = 'follower';
    this.writeRecord();
    if (this.role === 'solo') return;
    var lease = this.readLease();
    if (lease && lease.id !== this.id && !this.stale(lease.at)) this.leaderId = lease.id;
    else this.claim();
    this.scheduleHeartbeat();
  };

  TabGroup.prototype.leave = function () {
    this.unlisten();
    this.unlisten = util.noop;
    this.cancelTimers();
    if (this.role === 'leader') this.stopPolling();
    // A leader's lease, or a claim not settled yet: free it, so a follower takes over now rather than in leaseMs.
    if (this.role === 'leader' || this.role === 'claiming') {
      var lease = this.readLease();
      if (lease && lease.id === this.id) this.storageCall('removeItem', this.prefix + 'lease');
    }
    this.storageCall('removeItem', this.prefix + 'tab:' + this.id);
    this.closeChannel();
    this.leaderLoops = [];
    this.leaderId = null;
  };

  TabGroup.prototype.cancelTimers = function () {
    if (this.heartbeat !== null) this.timers.clearTimeout(this.heartbeat);
    if (this.claimTimer !== null) this.timers.clearTimeout(this.claimTimer);
    this.heartbeat = null;
    this.claimTimer = null;
  };

  /** A BroadcastChannel for the relay when the browser has one; otherwise the relay key is used. */
  TabGroup.prototype.openChannel = function () {
    var self = this;
    var Channel = this.window.BroadcastChannel;
    if (typeof Channel !== 'function') return;
    try {
      this.channel = new Channel(this.prefix + 'relay');
      this.channel.onmessage = function (event) { self.onRelay(event.data); };
    } catch (e) {
      this.channel = null;
    }
  };

  TabGroup.prototype.closeChannel = function () {
    if (!this.channel) return;
    try {
      this.channel.close();
    } catch (e) { /* already closed */ }
    this.channel = null;
  };

  // ---- storage --------------------------------------------------------------------

  /**
   * One storage call; any exception (quota, storage switched off meanwhile)
   * ends sharing for this tab, which then polls for itself.
   */
  TabGroup.prototype.storageCall = function (method, key, value) {
    if (this.role === 'solo') return null;
    try {
      return this.storage[method](key, value);
    } catch (e) {
      this.goSolo();
      return null;
    }
  };

  TabGroup.prototype.readJson = function (key) {
    var parsed = util.parseJson(this.storageCall('getItem', key));
    return parsed.ok && parsed.value && typeof parsed.value === 'object' ? parsed.value : null;
  };

  TabGroup.prototype.readLease = function () {
    var lease = this.readJson(this.prefix + 'lease');
    return lease && typeof lease.id === 'string' && typeof lease.at === 'number' ? lease : null;
  };

  TabGroup.prototype.writeLease = function () {
    this.storageCall('setItem', this.prefix + 'lease', util.stringify({ id: this.id, at: this.now() }));
  };

  TabGroup.prototype.writeRecord = function () {
    var rooms = [];
    for (var i = 0; i < this.rooms.length; i++) rooms.push([this.rooms[i], this.cursorOf(this.rooms[i])]);
    this.storageCall('setItem', this.prefix + 'tab:' + this.id, util.stringify({ rooms: rooms, at: this.now() }));
  };

  TabGroup.prototype.stale = function (at) {
    return this.now() - at > this.leaseMs;
  };

  TabGroup.prototype.onStorage = function (event) {
    var key = event && event.key;
    if (typeof key !== 'string' || key.indexOf(this.prefix) !== 0) return;
    var name = key.slice(this.prefix.length);
    var parsed = util.parseJson(event.newValue);
    var value = parsed.ok && parsed.value && typeof parsed.value === 'object' ? parsed.value : null;
    if (name === 'lease') this.onLease(value && typeof value.id === 'string' ? value : null);
    else if (name === 'relay') this.onRelay(event.newValue);
    else if (name.indexOf('tab:') === 0 && this.role === 'leader') this.reconcile();
  };

  // ---- election ----------------------------------------------------------------

  TabGroup.prototype.scheduleHeartbeat = function () {
    var self = this;
    if (this.heartbeat !== null) this.timers.clearTimeout(this.heartbeat);
    this.heartbeat = this.timers.setTimeout(function () {
      self.heartbeat = null;
      self.beat();
      if (self.role === 'leader' || self.role === 'follower' || self.role === 'claiming') self.scheduleHeartbeat();
    }, this.heartbeatMs);
  };

  TabGroup.prototype.beat = function () {
    this.writeRecord();
    var lease = this.readLease();
    if (this.role === 'leader') {
      // Someone found us silent for leaseMs and took over: step down, we hold no lease now.
      if (lease && lease.id !== this.id) {
        this.stepDown(lease.id);
        return;
      }
      this.writeLease();
      this.reconcile();
      // Followers that came since the last state change learn the leader's loops too.
      if (this.poller) this.send({ t: 'state', loops: this.poller.snapshot() });
    } else if (this.role === 'follower') {
      if (!lease || this.stale(lease.at)) this.claim();
      else this.leaderId = lease.id;
    }
  };

  TabGroup.prototype.claim = function () {
    var self = this;
    if (this.role === 'solo') return;
    this.role = 'claiming';
    this.writeLease();
    if (this.claimTimer !== null) this.timers.clearTimeout(this.claimTimer);
    this.claimTimer = this.timers.setTimeout(function () {
      self.claimTimer = null;
      if (self.role !== 'claiming') return;
      var lease = self.readLease();
      if (lease && lease.id === self.id) self.lead();
      else self.follow(lease ? lease.id : null);
    }, this.claimMs);
  };

  /** Another tab wrote the lease, or the leader removed it when it left. */
  TabGroup.prototype.onLease = function (lease) {
    if (!lease) {
      if (this.role === 'follower') this.claim();
      return;
    }
    if (lease.id === this.id) return;
    if (this.role === 'claiming') {
      // Simultaneous claims: the smaller id wins, whoever wrote last.
      if (lease.id < this.id) this.follow(lease.id);
      else this.writeLease();
    } else if (this.role === 'leader') {
      this.stepDown(lease.id);
    } else if (this.role === 'follower') {
      this.leaderId = lease.id;
      // A new leader reads every record when it starts; make ours fresh.
      this.writeRecord();
    }
  };

  TabGroup.prototype.follow = function (leaderId) {
    if (this.claimTimer !== null) this.timers.clearTimeout(this.claimTimer);
    this.claimTimer = null;
    this.role = 'follower';
    this.leaderId = leaderId;
  };

  TabGroup.prototype.stepDown = function (leaderId) {
    this.stopPolling();
    this.follow(leaderId);
    this.handler.state(null);
    // A leader that went silent (hung, or throttled) was replaced while it thought it led: relays sent meanwhile
    // were not for it, and the new leader polls rooms other tabs show from their cursors, not ours. Catch up
    // from history, as after a resync (the client drops what it already has).
    if (this.rooms.length > 0) this.handler.resync(this.rooms.slice(), util.noop);
  };

  /** Becomes the leader: polls the union of every fresh record's rooms, from the oldest cursor announced for each. */
  TabGroup.prototype.lead = function () {
    var self = this;
    this.role = 'leader';
    this.leaderId = this.id;
    this.leaderLoops = [];
    this.cursors = {};
    this.announced = {};
    this.poller = this.createPoller(this.leaderHandler(), function (room) {
      return util.hasOwn(self.cursors, room) ? self.cursors[room] : 0;
    });
    this.writeLease();
    this.reconcile();
  };

  TabGroup.prototype.stopPolling = function () {
    if (!this.poller) return;
    this.poller.stop();
    this.poller = null;
    this.cursors = {};
    this.announced = {};
  };

  /** Storage failed: poll this tab's own rooms alone from now on, as without sharing. */
  TabGroup.prototype.goSolo = function () {
    if (this.role === 'solo') return;
    var wasLeader = this.role === 'leader';
    this.unlisten();
    this.unlisten = util.noop;
    this.cancelTimers();
    this.closeChannel();
    if (wasLeader) this.stopPolling();
    this.role = 'solo';
    this.leaderLoops = [];
    this.poller = this.createPoller(this.handler, this.cursorOf);
    if (this.rooms.length > 0) this.poller.add(this.rooms);
  };

  // ---- the leader's poll -----------------------------------------------------------

  /**
   * Rooms tab `id` announces now ([[room, cursor], ...]). A room new to that tab
   * lowers the room's poll cursor to the tab's (re-issuing the poll): events the
   * tab has not seen may have been relayed before it showed the room.
   */
  TabGroup.prototype.announce = function (id, pairs) {
    // Room names are keys here: "constructor" is a valid one, so every lookup is hasOwn.
    var before = util.hasOwn(this.announced, id) ? this.announced[id] : {};
    var now = {};
    var lowered = [];
    for (var i = 0; i < pairs.length; i++) {
      var pair = pairs[i];
      if (!util.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'number') continue;
      var room = pair[0];
      now[room] = true;
      if (util.hasOwn(before, room)) continue;
      if (!util.hasOwn(this.cursors, room)) {
        this.cursors[room] = pair[1];
      } else if (pair[1] < this.cursors[room]) {
        this.cursors[room] = pair[1];
        lowered.push(room);
      }
    }
    this.announced[id] = now;
    if (lowered.length > 0) this.repoll(lowered);
  };

  /** Re-reads every record and polls exactly the union of this tab's rooms and the fresh records' rooms. */
  TabGroup.prototype.reconcile = function () {
    if (this.role !== 'leader') return;
    var storage = this.storage;
    var prefix = this.prefix + 'tab:';
    var seen = {};
    var keys = [];
    try {
      for (var i = 0; i < storage.length; i++) {
        var key = storage.key(i);
        if (key && key.indexOf(prefix) === 0) keys.push(key);
      }
    } catch (e) {
      this.goSolo();
      return;
    }
    this.announce(this.id, this.ownPairs());
    seen[this.id] = true;
    for (var k = 0; k < keys.length; k++) {
      var id = keys[k].slice(prefix.length);
      if (id === this.id) continue;
      var record = this.readJson(keys[k]);
      if (!record || typeof record.at !== 'number' || !util.isArray(record.rooms)) continue;
      if (this.stale(record.at)) {
        // A tab gone without a word (crashed): its record goes after a minute.
        if (this.now() - record.at > 60000) this.storageCall('removeItem', keys[k]);
        continue;
      }
      seen[id] = true;
      this.announce(id, record.rooms);
    }
    for (var gone in this.announced) {
      if (util.hasOwn(this.announced, gone) && !util.hasOwn(seen, gone)) delete this.announced[gone];
    }
    if (this.role !== 'leader') return;
    var union = [];
    for (var tab in this.announced) {
      if (!util.hasOwn(this.announced, tab)) continue;
      for (var room in this.announced[tab]) {
        if (util.hasOwn(this.announced[tab], room) && util.indexOf(union, room) === -1) union.push(room);
      }
    }
    var polled = [];
    this.poller.eachLoop(function (loop) { polled = polled.concat(loop.rooms); });
    var dropped = [];
    for (var p = 0; p < polled.length; p++) {
      if (util.indexOf(union, polled[p]) === -1) dropped.push(polled[p]);
    }
    for (var d = 0; d < dropped.length; d++) delete this.cursors[dropped[d]];
    if (dropped.length > 0) this.poller.remove(dropped);
    this.poller.add(union);
  };

  TabGroup.prototype.ownPairs = function () {
    var pairs = [];
    for (var i = 0; i < this.rooms.length; i++) pairs.push([this.rooms[i], this.cursorOf(this.rooms[i])]);
    return pairs;
  };

  /** Re-issues the polls of loops that poll `rooms`, whose cursors went down. */
  TabGroup.prototype.repoll = function (rooms) {
    if (!this.poller) return;
    this.poller.eachLoop(function (loop) {
      for (var i = 0; i < rooms.length; i++) {
        if (util.indexOf(loop.rooms, rooms[i]) !== -1) {
          loop.roomsChanged();
          return;
        }
      }
    });
  };

  /** The handler of the leader's Poller: this tab's handler, plus the same call relayed to every tab. */
  TabGroup.prototype.leaderHandler = function () {
    var self = this;
    var handler = this.handler;
    return {
      events: function (events) {
        for (var i = 0; i < events.length; i++) {
          var e = events[i];
          if (e && typeof e.id === 'number' && util.hasOwn(self.cursors, e.room) && e.id > self.cursors[e.room]) self.cursors[e.room] = e.id;
        }
        self.send({ t: 'events', events: events });
        self.deliver(events);
      },
      resync: function (rooms, done) {
        self.send({ t: 'resync', rooms: rooms });
        handler.resync(rooms, function (err) {
          // A room only this tab shows is polled from its reloaded cursor; others keep
          // the old one, so a tab that reloaded earlier still gets what followed.
          if (!err) self.raiseSoleCursors(rooms);
          done(err);
        });
      },
      refused: function (rooms, err, done) {
        self.send({ t: 'refused', rooms: rooms, error: errorData(err) });
        handler.refused(rooms, err, done);
      },
      sessionLost: function (err) {
        self.send({ t: 'session-lost', error: errorData(err) });
        handler.sessionLost(err);
      },
      state: function (info) {
        if (self.poller) self.send({ t: 'state', loops: self.poller.snapshot() });
        handler.state(info);
      }
    };
  };

  TabGroup.prototype.raiseSoleCursors = function (rooms) {
    for (var i = 0; i < rooms.length; i++) {
      var room = rooms[i];
      if (!this.has(room) || !util.hasOwn(this.cursors, room)) continue;
      var shared = false;
      for (var tab in this.announced) {
        if (util.hasOwn(this.announced, tab) && tab !== this.id && util.hasOwn(this.announced[tab], room)) shared = true;
      }
      if (!shared && this.cursorOf(room) > this.cursors[room]) this.cursors[room] = this.cursorOf(room);
    }
  };

  // ---- the relay -------------------------------------------------------------------

  function errorData(err) {
    return { code: err && err.code, message: err && err.message, status: err && err.status };
  }

  TabGroup.prototype.send = function (message) {
    var text = util.stringify({ from: this.id, seq: ++this.seq, message: message });
    if (this.channel) {
      try {
        this.channel.postMessage(text);
        return;
      } catch (e) {
        this.channel = null; // closed under us: fall back to the relay key
      }
    }
    // The storage event carries the value written; removing it at once keeps message text
    // out of the profile's localStorage (it would outlive the session there).
    this.storageCall('setItem', this.prefix + 'relay', text);
    this.storageCall('removeItem', this.prefix + 'relay');
  };

  /** The events of this tab's own rooms, to the client (which drops those at or below its cursors). */
  TabGroup.prototype.deliver = function (events) {
    var own = [];
    for (var i = 0; i < events.length; i++) {
      if (events[i] && this.has(events[i].room)) own.push(events[i]);
    }
    if (own.length > 0) this.handler.events(own);
  };

  TabGroup.prototype.onRelay = function (text) {
    var parsed = util.parseJson(text);
    var envelope = parsed.ok ? parsed.value : null;
    if (!envelope || envelope.from === this.id || !envelope.message) return;
    // A leader polls for itself; anyone else takes what comes (a claimant too: duplicates are dropped).
    if (this.role !== 'follower' && this.role !== 'claiming') return;
    var m = envelope.message;
    var handler = this.handler;
    this.leaderId = envelope.from;
    if (m.t === 'events' && util.isArray(m.events)) {
      this.deliver(m.events);
    } else if (m.t === 'resync' && util.isArray(m.rooms)) {
      handler.resync(m.rooms, util.noop);
    } else if (m.t === 'refused' && util.isArray(m.rooms)) {
      handler.refused(m.rooms, relayedError(m.error), util.noop);
    } else if (m.t === 'session-lost') {
      handler.sessionLost(relayedError(m.error));
    } else if (m.t === 'state' && util.isArray(m.loops)) {
      this.leaderLoops = m.loops;
      handler.state(m.loops[0] || null);
    }
  };

  function relayedError(data) {
    data = data || {};
    return util.error(String(data.code || 'COMET_ERR_RELAYED'), String(data.message || 'relayed by the leader tab'), data.status || 0);
  }

  CometChat.TabGroup = TabGroup;
}(this));
