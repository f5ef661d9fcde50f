/*
 * chat-ui.js: the chat page's controller. Wires the DOM of public/index.html
 * to a CometChat.Client: sign-in, rooms, messages, members, the post box and
 * the connection status. Posts go through a CometChat.Outbox (sent again by
 * themselves after a failure), limits are counted by chat-limits.js, error
 * codes become sentences in chat-errors.js, panels open and close in
 * chat-layout.js.
 *
 * For tests and curious users the running app is `CometChat.app`:
 * `app.client` (the Client), `app.state()` (plain data), `app.joinRooms(names, cb)`,
 * `app.activate(room)`; the DOM carries `data-room`, `data-event-id`,
 * `data-state` (connection) and `data-strategy` (on <body>).
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;
  var dom = CometChat.dom;
  var views = CometChat.views;
  var errors = CometChat.errors;
  var limits = CometChat.limits;

  var LOBBY = 'lobby';
  /** How long after someone's last event we still show them online (presence is updated by polls, see docs/chat-api.md). */
  var RECENT_ACTIVITY_MS = 60 * 1000;
  var MEMBERS_REFRESH_MS = 30 * 1000;
  /**
   * A created room is announced by a `room` event in the lobby (docs/chat-api.md), which
   * adds it to "Other rooms" at once; the list is still asked for this often while the page
   * is visible (a slow fallback: a tab that left the lobby, member counts), and at once when
   * it becomes visible. A multiple of MEMBERS_REFRESH_MS (one timer serves both).
   */
  var ROOMS_REFRESH_MS = 60 * 1000;
  /**
   * Per-room polls share the browser's 6 connections per host name with every
   * other request; past 5 rooms the polls take them all and posts queue behind
   * held polls for up to the hold time (README, "Many rooms in one page").
   */
  var PER_HOST_POLLS = 5;
  var STATUS_LABELS = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Signed out' };

  function ChatApp(doc, win) {
    this.doc = doc;
    this.win = win;
    this.client = CometChat.createClient({ strategy: util.queryParam(win.location.search, 'strategy') || 'multiplex' });
    this.user = null;
    this.active = null;
    this.panes = {};
    this.unread = {};
    this.recent = {};
    this.membersTimer = null;
    this.membersSeq = 0;
    this.roomsTimer = null;
    this.roomsAsked = false;
    this.roomsAgain = false;
    this.refreshInterval = null;
    /** The last rooms list (GET /api/rooms), kept so a `room` event can add to it. */
    this.directory = [];
    this.loopStates = {};
    this.limits = limits.from(null);
    this.$ = {};
  }

  ChatApp.prototype.boot = function () {
    var self = this;
    var ids = ['login', 'login-form', 'nick', 'login-button', 'login-error', 'chat', 'status', 'status-text',
      'strategy', 'me', 'joined-rooms', 'all-rooms', 'create-room-form', 'new-room', 'room-error', 'room-title',
      'leave-room', 'panes', 'post-form', 'post-text', 'post-button', 'post-error', 'members', 'members-count',
      'notice', 'rooms-toggle', 'members-toggle', 'transport-toggle', 'transport-menu', 'transport-flag',
      'strategy-warning', 'scrim', 'sidebar', 'nick-counter', 'new-room-counter', 'post-counter', 'post-label',
      'rooms-unread', 'members-panel'];
    for (var i = 0; i < ids.length; i++) this.$[ids[i]] = this.doc.getElementById(ids[i]);
    var $ = this.$;
    this.layout = new CometChat.Layout(this.doc, this.win, $);
    this.outbox = new CometChat.Outbox({
      post: function (room, text, key, callback) { self.client.post(room, text, key, callback); },
      onChange: function (item) { self.onOutboxChange(item); },
      onSent: function (item, event) { self.onOutboxSent(item, event); },
      onSessionLost: function () { self.showLogin('Your session has ended. Please sign in again.'); }
    });
    // Room names are lower-case (docs/chat-api.md): lower the name as it is typed, so what
    // the field shows is what gets created (the hint under it says why).
    util.listen($['new-room'], 'input', function () { lowerCaseField($['new-room']); });
    var max = this.limits;
    this.counters = {
      nick: new limits.Counter($.nick, $['nick-counter'], function () { return max.nickMaxChars; }),
      room: new limits.Counter($['new-room'], $['new-room-counter'], function () { return max.roomNameMaxChars; }),
      post: new limits.Counter($['post-text'], $['post-counter'], function () { return max.messageMaxChars; }, function (over) {
        // Past the limit Send is off and the box says why; nothing is cut.
        $['post-form'].setAttribute('data-over', over ? 'true' : 'false');
        $['post-button'].disabled = over;
        if (!over && $['post-error'].getAttribute('data-code') === 'APP_ERR_MESSAGE_TOO_LONG') self.setPostError(null);
      })
    };

    this.rooms = new views.RoomList(this.doc, $['joined-rooms'], $['all-rooms'],
      function (room) { self.choose(room); },
      function (room) { self.joinAndOpen(room); });
    this.members = new views.MemberList(this.doc, $.members, $['members-count']);

    util.listen($['login-form'], 'submit', function (e) { dom.preventDefault(e); self.login(); });
    util.listen($['create-room-form'], 'submit', function (e) { dom.preventDefault(e); self.createRoom(); });
    util.listen($['post-form'], 'submit', function (e) { dom.preventDefault(e); self.post(); });
    util.listen($['post-text'], 'keydown', function (e) { self.onPostKey(e); });
    util.listen($['post-text'], 'input', function () { self.fitPostBox(); });
    util.listen($['leave-room'], 'click', function () { self.leaveActive(); });
    util.listen($.strategy, 'change', function () { self.switchStrategy($.strategy.value); });
    // The browser says the network is back: a post waiting to be resent goes now.
    util.listen(this.win, 'online', function () { self.outbox.kick(); });
    util.listen(this.doc, 'visibilitychange', function () {
      if (self.user && self.visible()) {
        self.refreshRoomList();
        self.refreshMembers();
      }
    });

    this.listenToClient();
    if (CometChat.account) CometChat.account.attach(this); // change nick, sign out (chat-account.js)
    this.setStatus('connecting');
    this.client.start(function (err, user) {
      self.doc.body.setAttribute('data-strategy', self.client.strategy);
      $.strategy.value = self.client.strategy;
      self.setLimits(self.client.config.limits);
      if (self.client.strategyNote) self.notice('Using multiplex: ' + self.client.strategyNote + '.');
      if (err) {
        self.showLogin(errors.describe('reach the chat server', err) + ' Reload to try again.');
      } else if (user) {
        self.enter(user);
      } else {
        self.showLogin('');
      }
    });
  };

  ChatApp.prototype.listenToClient = function () {
    var self = this;
    var client = this.client;
    client.on('reset', function (room, page) {
      self.paneFor(room).reset(page);
      if (room === self.active) self.refreshMembersSoon();
    });
    client.on('events', function (room, events) { self.onEvents(room, events); });
    client.on('room-removed', function (room, err) {
      self.removeRoom(room);
      self.notice('You are no longer in #' + room + ': ' + errors.reason(err) + '.');
    });
    client.on('room-left', function (room) { self.removeRoom(room); });
    client.on('session-lost', function () { self.showLogin('Your session has ended. Please sign in again.'); });
    client.on('poll-state', function (info) {
      // A tab that stops leading, or follows a leader with no loop, reports null: only the status changes.
      if (info) {
        // A loop that was backing off polls (or streams) again: the connection is probably back, so resend now.
        if ((info.state === 'polling' || info.state === 'streaming') && self.loopStates[info.key] === 'waiting') self.outbox.kick();
        self.loopStates[info.key] = info.state;
      }
      self.updateStatus();
    });
    client.on('bridge', function () { self.updateStatus(); });
  };

  // ---- screens ----------------------------------------------------------------

  ChatApp.prototype.showLogin = function (message) {
    this.user = null;
    for (var room in this.panes) {
      if (util.hasOwn(this.panes, room)) this.panes[room].root.parentNode.removeChild(this.panes[room].root);
    }
    this.panes = {};
    this.unread = {};
    this.recent = {};
    this.active = null;
    this.outbox.clear();
    this.setStatus('offline');
    dom.show(this.$.chat, false);
    dom.show(this.$.login, true);
    dom.setText(this.$['login-error'], message);
    this.$['login-button'].disabled = false;
    this.doc.body.setAttribute('data-screen', 'login');
    this.doc.body.removeAttribute('data-ready');
    try {
      this.$.nick.focus();
    } catch (e) { /* hidden in old IE */ }
  };

  ChatApp.prototype.login = function () {
    var self = this;
    var nick = limits.trim(this.$.nick.value);
    if (nick === '') {
      dom.setText(this.$['login-error'], 'Please choose a nickname.');
      return;
    }
    if (this.counters.nick.over()) {
      dom.setText(this.$['login-error'], this.counters.nick.overText('nickname'));
      return;
    }
    this.$['login-button'].disabled = true;
    dom.setText(this.$['login-error'], '');
    this.client.login(nick, function (err, user) {
      self.$['login-button'].disabled = false;
      if (err) dom.setText(self.$['login-error'], errors.describe('sign in', err));
      else self.enter(user);
    });
  };

  /**
   * Shows the chat and opens the lobby, the rooms this tab had open (in its order), then every
   * other room the session is a member of: memberships are the session's, so a new tab or
   * another device opens the same rooms. Then the message box has the focus.
   */
  ChatApp.prototype.enter = function (user) {
    var self = this;
    this.user = user;
    dom.setText(this.$.me, user.nick);
    dom.show(this.$.login, false);
    dom.show(this.$.chat, true);
    this.doc.body.setAttribute('data-screen', 'chat');
    var rooms = [LOBBY].concat(this.remembered());
    this.client.listRooms(function (err, all) {
      if (!err) {
        for (var i = 0; i < all.length; i++) {
          if (all[i].joined === true && util.indexOf(rooms, all[i].name) === -1) rooms.push(all[i].name);
        }
      }
      self.joinRooms(rooms, function () {
        if (!self.active && self.client.order.length > 0) self.activate(self.client.order[0]);
        self.focusPostBox();
        self.doc.body.setAttribute('data-ready', 'true');
      });
    });
    if (this.refreshInterval === null) {
      // Presence changes without events (someone stops polling) and rooms are
      // created without any event reaching us, so look again now and then.
      var ticks = 0;
      this.refreshInterval = this.win.setInterval(function () {
        if (!self.user || !self.visible()) return;
        self.refreshMembers();
        if (++ticks % (ROOMS_REFRESH_MS / MEMBERS_REFRESH_MS) === 0) self.refreshRoomList();
      }, MEMBERS_REFRESH_MS);
    }
  };

  // ---- rooms --------------------------------------------------------------------

  /** Joins rooms (see Client.joinRooms) and updates the sidebar; callback(err, result) optional. */
  ChatApp.prototype.joinRooms = function (rooms, callback) {
    var self = this;
    this.client.joinRooms(rooms, function (err, result) {
      self.remember();
      self.renderRooms();
      self.refreshRoomList();
      for (var i = 0; i < result.failed.length; i++) {
        var f = result.failed[i];
        if (f.error.code !== 'APP_ERR_ROOM_NOT_FOUND' || f.room === LOBBY) self.notice(errors.describe('join #' + f.room, f.error));
      }
      if (callback) callback(err, result);
    });
  };

  ChatApp.prototype.joinAndOpen = function (room) {
    var self = this;
    this.joinRooms([room], function (err, result) {
      if (!err && self.client.joined(room)) self.choose(room);
      else if (result.failed.length > 0) dom.setText(self.$['room-error'], errors.describe('join #' + room, result.failed[0].error));
    });
  };

  /** Lowers a field's text in place, keeping the caret where it was. */
  function lowerCaseField(field) {
    var value = field.value;
    var lower = value.toLowerCase();
    if (lower === value) return;
    var start = field.selectionStart;
    var end = field.selectionEnd;
    field.value = lower;
    // Same length for the ASCII a name may hold; elsewhere the server refuses the name anyway.
    if (typeof start === 'number' && lower.length === value.length) {
      try {
        field.setSelectionRange(start, end);
      } catch (e) { /* no selection API (old IE) */ }
    }
  }

  ChatApp.prototype.createRoom = function () {
    var self = this;
    var name = limits.trim(this.$['new-room'].value).toLowerCase();
    dom.setText(this.$['room-error'], '');
    if (name === '') return;
    if (this.counters.room.over()) {
      dom.setText(this.$['room-error'], this.counters.room.overText('room name'));
      return;
    }
    this.client.createRoom(name, function (err) {
      if (err && err.code !== 'APP_ERR_ROOM_EXISTS') {
        dom.setText(self.$['room-error'], errors.describe('create #' + name, err));
        return;
      }
      self.$['new-room'].value = '';
      self.counters.room.update();
      self.joinAndOpen(name);
    });
  };

  ChatApp.prototype.leaveActive = function () {
    var self = this;
    var room = this.active;
    if (!room) return;
    this.$['leave-room'].disabled = true;
    this.client.leaveRoom(room, function (err) {
      self.$['leave-room'].disabled = false;
      if (err) self.notice(errors.describe('leave #' + room, err));
    });
  };

  ChatApp.prototype.removeRoom = function (room) {
    var pane = this.panes[room];
    if (pane) pane.root.parentNode.removeChild(pane.root);
    delete this.panes[room];
    delete this.unread[room];
    delete this.recent[room];
    this.remember();
    if (this.active === room) {
      this.active = null;
      var order = this.client.order;
      if (order.length > 0) this.activate(order[0]);
      else this.showRoom(null);
    }
    this.renderRooms();
    this.refreshRoomList();
  };

  ChatApp.prototype.paneFor = function (room) {
    var self = this;
    if (!this.panes[room]) {
      var pane = new views.MessagePane(this.doc, room, this.user ? this.user.id : null, function (p) { self.loadOlder(p); },
        function (action, key) { self.onPendingAction(action, key); });
      this.panes[room] = pane;
      this.$.panes.appendChild(pane.root);
      var pending = this.outbox.inRoom(room);
      for (var i = 0; i < pending.length; i++) pane.showPending(pending[i], this.pendingStatus(pending[i]));
    }
    return this.panes[room];
  };

  ChatApp.prototype.activate = function (room) {
    if (!this.client.joined(room)) return;
    this.active = room;
    this.unread[room] = 0;
    this.showRoom(room);
    this.renderRooms();
    this.refreshMembers();
  };

  /** The user picked a room (list, join, create): show it, close a rooms drawer, type there. */
  ChatApp.prototype.choose = function (room) {
    this.activate(room);
    this.layout.roomChosen();
    this.focusPostBox();
  };

  ChatApp.prototype.focusPostBox = function () {
    try {
      if (!this.$['post-text'].disabled) this.$['post-text'].focus();
    } catch (e) { /* not focusable right now */ }
  };

  ChatApp.prototype.showRoom = function (room) {
    for (var name in this.panes) {
      if (util.hasOwn(this.panes, name)) dom.toggleClass(this.panes[name].root, 'is-active', name === room);
    }
    dom.setText(this.$['room-title'], room ? '#' + room : 'No room');
    this.$['post-text'].setAttribute('placeholder', room ? 'Message #' + room : '');
    dom.setText(this.$['post-label'], room ? 'Message #' + room : 'Message');
    this.$['post-text'].disabled = !room;
    this.$['leave-room'].disabled = !room;
    this.setPostError(null);
    if (room) this.paneFor(room).scrollToBottom();
    else this.members.clear();
  };

  ChatApp.prototype.renderRooms = function () {
    this.rooms.renderJoined(this.client.order, this.active, this.unread);
    this.updateStrategyWarning();
    // Unread messages elsewhere show on the rooms button too: on a phone the list is usually closed.
    var total = 0;
    for (var room in this.unread) {
      if (util.hasOwn(this.unread, room)) total += this.unread[room];
    }
    dom.setText(this.$['rooms-unread'], total > 99 ? '99+' : String(total));
    this.$['rooms-unread'].setAttribute('title', total + ' unread');
    dom.show(this.$['rooms-unread'], total > 0);
  };

  /** Per-room past PER_HOST_POLLS rooms stalls (see there): say so in the Transport menu and flag its button. */
  ChatApp.prototype.updateStrategyWarning = function () {
    var count = this.client.order.length;
    var stalls = this.client.strategy === 'per-room' && count > PER_HOST_POLLS;
    dom.setText(this.$['strategy-warning'], stalls
      ? 'Per-room polls once per room on one host: with ' + count + ' rooms that is more than the ' + PER_HOST_POLLS +
        ' connections the browser leaves this page, so some rooms and your posts wait. Choose multiplex (one poll for every room) or sharded.'
      : '');
    dom.show(this.$['strategy-warning'], stalls);
    dom.show(this.$['transport-flag'], stalls);
    this.$['transport-toggle'].setAttribute('title', stalls ? 'Transport: too many rooms for per-room' : 'Transport');
  };

  /** Polls and refreshes run only for a page someone can see (document.hidden, where the browser has it). */
  ChatApp.prototype.visible = function () {
    return this.doc.hidden !== true;
  };

  /** The room directory: refreshed on our own joins/leaves, on others', and every ROOMS_REFRESH_MS while visible (debounced). */
  ChatApp.prototype.refreshRoomList = function () {
    var self = this;
    if (this.roomsTimer !== null) return;
    this.roomsTimer = this.win.setTimeout(function () {
      self.roomsTimer = null;
      // One list request at a time: with per-room polls past the per-host limit a request
      // can queue in the browser for a whole hold, and the periodic refresh must not pile up.
      if (self.roomsAsked) {
        self.roomsAgain = true;
        return;
      }
      self.roomsAsked = true;
      self.client.listRooms(function (err, rooms) {
        self.roomsAsked = false;
        if (!err) {
          self.directory = rooms;
          self.renderAvailable();
        }
        if (self.roomsAgain) {
          self.roomsAgain = false;
          self.refreshRoomList();
        }
      });
    }, 200);
  };

  ChatApp.prototype.renderAvailable = function () {
    var client = this.client;
    this.rooms.renderAvailable(this.directory, function (name) { return client.joined(name); });
  };

  /** A `room` event: the room is listed at once (empty, by name), without asking the server. */
  ChatApp.prototype.roomCreated = function (name) {
    var list = this.directory;
    var at = 0;
    while (at < list.length && list[at].name < name) at++;
    if (at < list.length && list[at].name === name) return;
    list.splice(at, 0, { name: name, members: 0, lastEventId: 0 });
    this.renderAvailable();
  };

  ChatApp.prototype.loadOlder = function (pane) {
    var first = pane.firstId();
    if (first === null) return;
    this.client.olderHistory(pane.room, first, function (err, page) {
      if (!err) pane.addOlder(page);
    });
  };

  /** Rooms joined in this tab, so a reload rejoins them (the API has no "my rooms" call). */
  ChatApp.prototype.storageKey = function () {
    return 'comet-chat:rooms:' + (this.user ? this.user.id : '');
  };

  ChatApp.prototype.remembered = function () {
    try {
      var saved = util.parseJson(this.win.sessionStorage.getItem(this.storageKey()));
      return saved.ok && util.isArray(saved.value) ? saved.value : [];
    } catch (e) {
      return []; // no sessionStorage (old browser, privacy mode)
    }
  };

  ChatApp.prototype.remember = function () {
    try {
      this.win.sessionStorage.setItem(this.storageKey(), util.stringify(this.client.order));
    } catch (e) { /* not available: reloads start in the lobby */ }
  };

  // ---- messages and members -------------------------------------------------------

  ChatApp.prototype.onEvents = function (room, events) {
    var pane = this.paneFor(room);
    pane.add(events);
    this.hideEchoedPosts(room, events);
    var unread = 0;
    var membersChanged = false;
    var recent = this.recent[room] || (this.recent[room] = {});
    for (var i = 0; i < events.length; i++) {
      var e = events[i];
      if (e.user) recent[e.user.id] = util.now();
      if (e.type === 'message' && (!this.user || e.user.id !== this.user.id)) unread++;
      if (e.type === 'room') {
        if (typeof e.createdRoom === 'string') this.roomCreated(e.createdRoom);
      } else if (e.type !== 'message') {
        membersChanged = true;
      }
    }
    if (room !== this.active && unread > 0) {
      this.unread[room] = (this.unread[room] || 0) + unread;
      this.renderRooms();
    }
    if (membersChanged) {
      if (room === this.active) this.refreshMembersSoon();
      this.refreshRoomList();
    }
  };

  ChatApp.prototype.refreshMembersSoon = function () {
    var self = this;
    if (this.membersTimer !== null) return;
    this.membersTimer = this.win.setTimeout(function () {
      self.membersTimer = null;
      self.refreshMembers();
    }, 250);
  };

  /**
   * Presence comes from the server (a member polled recently); someone whose
   * event we just saw is shown online too, since their first poll may still be
   * on its way when their "came online" notice arrives.
   */
  ChatApp.prototype.refreshMembers = function () {
    var self = this;
    var room = this.active;
    if (!room) return;
    var seq = ++this.membersSeq;
    this.client.members(room, function (err, members) {
      if (err || seq !== self.membersSeq || room !== self.active) return;
      var recent = self.recent[room] || {};
      var now = util.now();
      for (var i = 0; i < members.length; i++) {
        if (recent[members[i].id] && now - recent[members[i].id] < RECENT_ACTIVITY_MS) members[i].online = true;
      }
      self.members.render(members, self.user ? self.user.id : null);
    });
  };

  ChatApp.prototype.onPostKey = function (event) {
    // Enter sends, Shift+Enter starts a new line; keyCode 229 is an IME composing.
    if (event.keyCode === 13 && !event.shiftKey && !event.isComposing) {
      dom.preventDefault(event);
      this.post();
    }
  };

  /**
   * The post box: a message within the limits goes to the outbox and the box is
   * free for the next one at once; past the limit nothing is sent (or cut) and
   * the box says why.
   */
  ChatApp.prototype.post = function () {
    var $ = this.$;
    var room = this.active;
    var text = $['post-text'].value;
    if (!room || limits.trim(text) === '') return;
    if (this.counters.post.update()) {
      this.setPostError(this.counters.post.overText('message'), 'APP_ERR_MESSAGE_TOO_LONG');
      return;
    }
    this.setPostError(null);
    $['post-text'].value = '';
    this.counters.post.update();
    this.fitPostBox();
    this.outbox.add(room, text);
    this.focusPostBox();
  };

  /** The box grows with its text up to its CSS max-height (then scrolls), and shrinks back once sent. */
  ChatApp.prototype.fitPostBox = function () {
    var box = this.$['post-text'];
    box.style.height = 'auto';
    if (box.scrollHeight > box.clientHeight) box.style.height = box.scrollHeight + 2 + 'px';
  };

  ChatApp.prototype.setPostError = function (text, code) {
    dom.setText(this.$['post-error'], text || '');
    if (code) this.$['post-error'].setAttribute('data-code', code);
    else this.$['post-error'].removeAttribute('data-code');
  };

  /** The line under a pending post: what happens to it now, in words. */
  ChatApp.prototype.pendingStatus = function (item) {
    if (item.state === 'retrying') {
      // Told when (Retry-After): say when; otherwise it goes as soon as we are back.
      var wait = typeof item.error.retryAfterMs === 'number' ? item.retryAt - util.now() : true;
      return errors.describe('send', item.error, wait);
    }
    if (item.state === 'failed') return errors.describe('send', item.error);
    if (item.state === 'queued') return 'Waiting to send…';
    return item.attempt > 0 ? 'Sending again…' : 'Sending…';
  };

  ChatApp.prototype.onOutboxChange = function (item) {
    var pane = this.panes[item.room];
    if (pane) pane.showPending(item, this.pendingStatus(item));
    // A refusal is said under the box too, with its code, as a refused send always was.
    if (item.state === 'failed' && item.room === this.active) this.setPostError(this.pendingStatus(item), item.error.code);
  };

  ChatApp.prototype.onOutboxSent = function (item, event) {
    var pane = this.panes[item.room];
    if (!pane) return;
    pane.removePending(item.key);
    // Shown at once; the poll delivers it again and the pane skips the known id.
    pane.add([event]);
  };

  ChatApp.prototype.onPendingAction = function (action, key) {
    var item = this.outbox.find(key);
    if (!item) return;
    if (action === 'retry') {
      this.setPostError(null);
      this.outbox.retry(key);
    } else if (action === 'discard') {
      this.outbox.discard(key);
      if (this.panes[item.room]) this.panes[item.room].removePending(key);
      this.setPostError(null);
    }
  };

  /**
   * Our own message arrived by the poll while its post is still pending (the answer is on
   * its way, or a resend will learn it was committed): hide the pending copy meanwhile.
   */
  ChatApp.prototype.hideEchoedPosts = function (room, events) {
    if (!this.user || !this.panes[room]) return;
    var pending = this.outbox.inRoom(room);
    for (var i = 0; i < events.length; i++) {
      var e = events[i];
      if (e.type !== 'message' || !e.user || e.user.id !== this.user.id) continue;
      for (var j = 0; j < pending.length; j++) {
        if (pending[j].state !== 'failed' && limits.trim(pending[j].text) === e.text) {
          this.panes[room].hidePending(pending[j].key);
          pending.splice(j, 1);
          break;
        }
      }
    }
  };

  /** The limits from GET /api/config (defaults for an app that does not announce them). */
  ChatApp.prototype.setLimits = function (announced) {
    var fresh = limits.from(announced);
    for (var key in fresh) {
      if (util.hasOwn(fresh, key)) this.limits[key] = fresh[key];
    }
    for (var name in this.counters) {
      if (util.hasOwn(this.counters, name)) this.counters[name].update();
    }
  };

  // ---- status ---------------------------------------------------------------------

  ChatApp.prototype.updateStatus = function () {
    if (!this.user) return;
    var status = this.client.status();
    var waiting = 0;
    var why = null;
    for (var i = 0; i < status.loops.length; i++) {
      if (status.loops[i].state !== 'waiting') continue;
      waiting++;
      if (why === null && status.loops[i].error) why = errors.reason({ code: status.loops[i].error, status: 0 });
    }
    var modes = [];
    for (var origin in status.bridges) {
      if (util.hasOwn(status.bridges, origin) && util.indexOf(modes, status.bridges[origin]) === -1) modes.push(status.bridges[origin]);
    }
    // A follower tab sends no poll: the loops shown are the leader's, in another tab (comet-tabs.js).
    var streams = status.loops.length > 0 && status.loops[0].transport && status.loops[0].transport !== 'poll';
    var polls = status.tabs.role === 'follower' ? 'shared ' + (streams ? 'stream' : 'poll') + ' (leader: another tab)' :
      streams ? status.loops[0].transport + ' stream' : status.loops.length + (status.loops.length === 1 ? ' poll' : ' polls');
    var detail = status.strategy + (modes.length ? ' via ' + modes.join('/') : '') + ' · ' + polls;
    // While reconnecting, why (in words) matters more than how the page polls.
    this.setStatus(waiting > 0 ? 'reconnecting' : 'live', waiting > 0 && why ? why : detail);
  };

  ChatApp.prototype.setStatus = function (state, detail) {
    this.$.status.setAttribute('data-state', state);
    dom.setText(this.$['status-text'], STATUS_LABELS[state] + (detail ? ' · ' + detail : ''));
  };

  /** A dismissable line above the messages for things the user should know. */
  ChatApp.prototype.notice = function (text) {
    var node = this.$.notice;
    dom.setText(node, text);
    dom.show(node, true);
    this.win.setTimeout(function () { dom.show(node, false); }, 8000);
  };

  /** Reloads with another strategy. */
  ChatApp.prototype.switchStrategy = function (strategy) {
    var loc = this.win.location;
    // The page's other options (tab sharing, the transport) survive the switch.
    var kept = '';
    var names = ['tabs', 'transport'];
    for (var i = 0; i < names.length; i++) {
      var value = util.queryParam(loc.search, names[i]);
      if (value) kept += '&' + names[i] + '=' + encodeURIComponent(value);
    }
    loc.href = loc.pathname + '?strategy=' + encodeURIComponent(strategy) + kept;
  };

  ChatApp.prototype.outboxState = function () {
    var out = [];
    for (var i = 0; i < this.outbox.items.length; i++) {
      var item = this.outbox.items[i];
      out.push({ key: item.key, room: item.room, state: item.state, attempt: item.attempt, error: item.error ? item.error.code : null });
    }
    return out;
  };

  /** Plain data for tests and debugging. */
  ChatApp.prototype.state = function () {
    return {
      screen: this.doc.body.getAttribute('data-screen'),
      user: this.user,
      active: this.active,
      sending: this.outbox.sending(),
      outbox: this.outboxState(),
      unread: this.unread,
      client: this.client.status()
    };
  };

  CometChat.ChatApp = ChatApp;

  /** Starts the chat on this page and returns it (also as CometChat.app). */
  CometChat.startChat = function (doc, win) {
    var app = new ChatApp(doc || window.document, win || window);
    CometChat.app = app;
    app.boot();
    return app;
  };
}(this));
