/*
 * chat-ui.js: the chat page's controller. Wires the DOM of public/index.html
 * to a CometChat.Client: sign-in, rooms, messages, members, the post box and
 * the connection status.
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

  var LOBBY = 'lobby';
  /** How long after someone's last event we still show them online (presence is updated by polls, see docs/chat-api.md). */
  var RECENT_ACTIVITY_MS = 60 * 1000;
  var MEMBERS_REFRESH_MS = 30 * 1000;
  var ROOMS_REFRESH_MS = 60 * 1000;
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
    this.sending = false;
    this.membersTimer = null;
    this.membersSeq = 0;
    this.roomsTimer = null;
    this.refreshInterval = null;
    this.$ = {};
  }

  ChatApp.prototype.boot = function () {
    var self = this;
    var ids = ['login', 'login-form', 'nick', 'login-button', 'login-error', 'chat', 'status', 'status-text',
      'strategy', 'me', 'joined-rooms', 'all-rooms', 'create-room-form', 'new-room', 'room-error', 'room-title',
      'leave-room', 'panes', 'post-form', 'post-text', 'post-button', 'post-error', 'members', 'members-count',
      'notice'];
    for (var i = 0; i < ids.length; i++) this.$[ids[i]] = this.doc.getElementById(ids[i]);
    var $ = this.$;

    this.rooms = new views.RoomList(this.doc, $['joined-rooms'], $['all-rooms'],
      function (room) { self.activate(room); },
      function (room) { self.joinAndOpen(room); });
    this.members = new views.MemberList(this.doc, $.members, $['members-count']);

    util.listen($['login-form'], 'submit', function (e) { dom.preventDefault(e); self.login(); });
    util.listen($['create-room-form'], 'submit', function (e) { dom.preventDefault(e); self.createRoom(); });
    util.listen($['post-form'], 'submit', function (e) { dom.preventDefault(e); self.post(); });
    util.listen($['post-text'], 'keydown', function (e) { self.onPostKey(e); });
    util.listen($['leave-room'], 'click', function () { self.leaveActive(); });
    util.listen($.strategy, 'change', function () { self.switchStrategy($.strategy.value); });

    this.listenToClient();
    if (CometChat.account) CometChat.account.attach(this); // change nick, sign out (chat-account.js)
    this.setStatus('connecting');
    this.client.start(function (err, user) {
      self.doc.body.setAttribute('data-strategy', self.client.strategy);
      $.strategy.value = self.client.strategy;
      if (self.client.strategyNote) self.notice('Using multiplex: ' + self.client.strategyNote + '.');
      if (err) {
        self.showLogin('Cannot reach the chat server (' + err.message + '). Reload to try again.');
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
      self.notice('You are no longer in #' + room + ' (' + err.message + ').');
    });
    client.on('room-left', function (room) { self.removeRoom(room); });
    client.on('session-lost', function () { self.showLogin('Your session has ended. Please sign in again.'); });
    client.on('poll-state', function () { self.updateStatus(); });
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
    var nick = this.$.nick.value.replace(/^\s+|\s+$/g, '');
    if (nick === '') {
      dom.setText(this.$['login-error'], 'Please choose a nickname.');
      return;
    }
    this.$['login-button'].disabled = true;
    dom.setText(this.$['login-error'], '');
    this.client.login(nick, function (err, user) {
      self.$['login-button'].disabled = false;
      if (err) dom.setText(self.$['login-error'], err.message);
      else self.enter(user);
    });
  };

  /** Shows the chat and joins the lobby plus the rooms remembered for this user in this tab. */
  ChatApp.prototype.enter = function (user) {
    var self = this;
    this.user = user;
    dom.setText(this.$.me, user.nick);
    dom.show(this.$.login, false);
    dom.show(this.$.chat, true);
    this.doc.body.setAttribute('data-screen', 'chat');
    var rooms = [LOBBY].concat(this.remembered());
    this.joinRooms(rooms, function () {
      if (!self.active && self.client.order.length > 0) self.activate(self.client.order[0]);
      self.doc.body.setAttribute('data-ready', 'true');
    });
    this.refreshRoomList();
    if (this.refreshInterval === null) {
      // Presence changes without events (someone stops polling) and rooms are
      // created without any event reaching us, so look again now and then.
      var ticks = 0;
      this.refreshInterval = this.win.setInterval(function () {
        if (!self.user) return;
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
        if (f.error.code !== 'APP_ERR_ROOM_NOT_FOUND' || f.room === LOBBY) self.notice('Could not join #' + f.room + ': ' + f.error.message);
      }
      if (callback) callback(err, result);
    });
  };

  ChatApp.prototype.joinAndOpen = function (room) {
    var self = this;
    this.joinRooms([room], function (err, result) {
      if (!err && self.client.joined(room)) self.activate(room);
      else if (result.failed.length > 0) dom.setText(self.$['room-error'], result.failed[0].error.message);
    });
  };

  ChatApp.prototype.createRoom = function () {
    var self = this;
    var name = this.$['new-room'].value.replace(/^\s+|\s+$/g, '').toLowerCase();
    dom.setText(this.$['room-error'], '');
    if (name === '') return;
    this.client.createRoom(name, function (err) {
      if (err && err.code !== 'APP_ERR_ROOM_EXISTS') {
        dom.setText(self.$['room-error'], err.message);
        return;
      }
      self.$['new-room'].value = '';
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
      if (err) self.notice('Could not leave #' + room + ': ' + err.message);
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
      var pane = new views.MessagePane(this.doc, room, this.user ? this.user.id : null, function (p) { self.loadOlder(p); });
      this.panes[room] = pane;
      this.$.panes.appendChild(pane.root);
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

  ChatApp.prototype.showRoom = function (room) {
    for (var name in this.panes) {
      if (util.hasOwn(this.panes, name)) dom.toggleClass(this.panes[name].root, 'is-active', name === room);
    }
    dom.setText(this.$['room-title'], room ? '#' + room : 'No room');
    this.$['post-text'].setAttribute('placeholder', room ? 'Message #' + room : '');
    this.$['post-text'].disabled = !room || this.sending;
    this.$['leave-room'].disabled = !room;
    dom.setText(this.$['post-error'], '');
    if (room) this.paneFor(room).scrollToBottom();
    else this.members.clear();
  };

  ChatApp.prototype.renderRooms = function () {
    this.rooms.renderJoined(this.client.order, this.active, this.unread);
  };

  /** The room directory changes rarely; refresh it on our own joins/leaves and on others' (debounced). */
  ChatApp.prototype.refreshRoomList = function () {
    var self = this;
    if (this.roomsTimer !== null) return;
    this.roomsTimer = this.win.setTimeout(function () {
      self.roomsTimer = null;
      self.client.listRooms(function (err, rooms) {
        if (!err) self.rooms.renderAvailable(rooms, function (name) { return self.client.joined(name); });
      });
    }, 200);
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
    var unread = 0;
    var membersChanged = false;
    var recent = this.recent[room] || (this.recent[room] = {});
    for (var i = 0; i < events.length; i++) {
      var e = events[i];
      if (e.user) recent[e.user.id] = util.now();
      if (e.type === 'message' && (!this.user || e.user.id !== this.user.id)) unread++;
      if (e.type !== 'message') membersChanged = true;
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

  ChatApp.prototype.post = function () {
    var self = this;
    var $ = this.$;
    var room = this.active;
    var text = $['post-text'].value;
    if (!room || this.sending || text.replace(/\s+/g, '') === '') return;
    this.setSending(true);
    dom.setText($['post-error'], '');
    $['post-error'].removeAttribute('data-code');
    this.client.post(room, text, function (err, event) {
      self.setSending(false);
      if (err) {
        dom.setText($['post-error'], err.message);
        $['post-error'].setAttribute('data-code', err.code);
        return;
      }
      $['post-text'].value = '';
      // Shown at once; the poll delivers it again and the pane skips the known id.
      if (self.panes[room]) self.panes[room].add([event]);
    });
  };

  ChatApp.prototype.setSending = function (sending) {
    var $ = this.$;
    this.sending = sending;
    $['post-text'].disabled = sending || !this.active;
    $['post-button'].disabled = sending;
    dom.toggleClass($['post-form'], 'is-sending', sending);
    if (!sending) {
      try {
        $['post-text'].focus();
      } catch (e) { /* not focusable right now */ }
    }
  };

  // ---- status ---------------------------------------------------------------------

  ChatApp.prototype.updateStatus = function () {
    if (!this.user) return;
    var status = this.client.status();
    var waiting = 0;
    for (var i = 0; i < status.loops.length; i++) {
      if (status.loops[i].state === 'waiting') waiting++;
    }
    var modes = [];
    for (var origin in status.bridges) {
      if (util.hasOwn(status.bridges, origin) && util.indexOf(modes, status.bridges[origin]) === -1) modes.push(status.bridges[origin]);
    }
    var detail = status.strategy + (modes.length ? ' via ' + modes.join('/') : '') + ' · ' +
      status.loops.length + (status.loops.length === 1 ? ' poll' : ' polls');
    this.setStatus(waiting > 0 ? 'reconnecting' : 'live', detail);
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

  ChatApp.prototype.switchStrategy = function (strategy) {
    var loc = this.win.location;
    loc.href = loc.pathname + '?strategy=' + encodeURIComponent(strategy);
  };

  /** Plain data for tests and debugging. */
  ChatApp.prototype.state = function () {
    return {
      screen: this.doc.body.getAttribute('data-screen'),
      user: this.user,
      active: this.active,
      sending: this.sending,
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
