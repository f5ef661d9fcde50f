/*
 * chat-views.js: the chat's views. They render what they are given and report
 * clicks; the controller (chat-ui.js) owns the state and talks to the client.
 *
 *   MessagePane  one room's messages: <section class="pane" data-room>, items
 *                <li data-event-id data-type>, kept in id order, each id once,
 *                then the posts still on their way (<li class="pending"
 *                data-pending-key data-state>, see chat-outbox.js)
 *   RoomList     the joined rooms (unread badges) and the rooms one can join
 *   MemberList   the active room's members with an online dot
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var dom = CometChat.dom;
  var el = dom.el;

  /** Consecutive messages by one person within this window share one header. */
  var GROUP_WINDOW_MS = 5 * 60 * 1000;
  /** Items kept per room; older ones are dropped from the DOM (and can be loaded again). */
  var MAX_ITEMS = 1000;

  // ---- MessagePane ----------------------------------------------------------

  /** onPendingAction(action, key): 'retry' or 'discard' clicked on a pending post. */
  function MessagePane(doc, room, myUserId, onLoadOlder, onPendingAction) {
    var self = this;
    this.doc = doc;
    this.room = room;
    this.myUserId = myUserId;
    this.byId = {};
    this.ids = [];
    this.pendingKeys = [];
    this.pendingNodes = {};
    this.older = el(doc, 'button', { type: 'button', className: 'load-older is-hidden' }, ['Load older messages']);
    // A live region: screen readers read new messages (additions only, not the whole list again).
    this.list = el(doc, 'ol', { className: 'messages', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Messages in #' + room });
    this.empty = el(doc, 'p', { className: 'empty-room' }, ['No messages yet. Say hello!']);
    this.root = el(doc, 'section', { className: 'pane', 'data-room': room }, [this.older, this.empty, this.list]);
    CometChat.util.listen(this.older, 'click', function () { onLoadOlder(self); });
    CometChat.util.listen(this.list, 'click', function (event) {
      var button = dom.closestWithAttr(dom.target(event), 'data-pending-action', self.list);
      if (button && onPendingAction) onPendingAction(button.getAttribute('data-pending-action'), button.getAttribute('data-key'));
    });
  }

  MessagePane.prototype.firstId = function () {
    return this.ids.length > 0 ? this.ids[0] : null;
  };

  /** Replaces everything shown with a history page (join, resync). */
  MessagePane.prototype.reset = function (page) {
    this.byId = {};
    this.ids = [];
    dom.clear(this.list);
    for (var i = 0; i < this.pendingKeys.length; i++) this.list.appendChild(this.pendingNodes[this.pendingKeys[i]]);
    this.add(page.events);
    this.setHasMore(page.hasMore);
    this.scrollToBottom();
  };

  MessagePane.prototype.setHasMore = function (hasMore) {
    dom.show(this.older, !!hasMore);
  };

  /**
   * Adds events in id order; an id already shown is skipped (the poll also
   * delivers our own posts, which are shown as soon as the POST answers).
   */
  MessagePane.prototype.add = function (events) {
    var stick = this.nearBottom();
    for (var i = 0; i < events.length; i++) this.insert(events[i]);
    this.trim();
    dom.show(this.empty, this.ids.length === 0);
    if (stick) this.scrollToBottom();
  };

  /** An older page: keep the scroll position on what the reader was looking at. */
  MessagePane.prototype.addOlder = function (page) {
    var before = this.list.scrollHeight;
    var top = this.list.scrollTop;
    for (var i = 0; i < page.events.length; i++) this.insert(page.events[i]);
    this.setHasMore(page.hasMore);
    dom.show(this.empty, this.ids.length === 0);
    this.list.scrollTop = top + (this.list.scrollHeight - before);
  };

  MessagePane.prototype.insert = function (event) {
    if (!event || typeof event.id !== 'number' || this.byId[event.id]) return;
    var at = this.ids.length;
    while (at > 0 && this.ids[at - 1] > event.id) at--;
    var previous = at > 0 ? this.byId[this.ids[at - 1]] : null;
    var node = this.render(event, previous);
    // Confirmed events stay above the posts still pending.
    var next = at < this.ids.length ? this.byId[this.ids[at]].node : this.pendingHead();
    this.list.insertBefore(node, next);
    this.ids.splice(at, 0, event.id);
    this.byId[event.id] = { event: event, node: node };
  };

  MessagePane.prototype.trim = function () {
    while (this.ids.length > MAX_ITEMS) {
      var id = this.ids.shift();
      this.list.removeChild(this.byId[id].node);
      delete this.byId[id];
      this.setHasMore(true);
    }
  };

  function continues(previous, event) {
    if (!previous || previous.event.type !== 'message' || event.type !== 'message') return false;
    if (previous.event.user.id !== event.user.id) return false;
    var a = dom.parseTime(previous.event.at);
    var b = dom.parseTime(event.at);
    return !!a && !!b && b.getTime() - a.getTime() < GROUP_WINDOW_MS;
  }

  var NOTICES = { join: ' joined the room', leave: ' left the room', online: ' came online' };

  MessagePane.prototype.render = function (event, previous) {
    var doc = this.doc;
    var nick = event.user && event.user.nick ? event.user.nick : '?';
    var time = el(doc, 'time', { className: 'msg-time', datetime: event.at, title: dom.formatDateTime(event.at) }, [dom.formatTime(event.at)]);
    var attrs = { 'data-event-id': event.id, 'data-type': event.type, 'data-user-id': event.user ? event.user.id : null };

    if (event.type !== 'message') {
      attrs.className = 'msg notice notice-' + event.type;
      return el(doc, 'li', attrs, [
        el(doc, 'span', { className: 'notice-text' }, event.type === 'nick'
          ? [el(doc, 'strong', null, [event.previousNick || '?']), ' is now known as ', el(doc, 'strong', null, [nick])]
          : event.type === 'room'
            ? [el(doc, 'strong', null, [nick]), ' created the room ', el(doc, 'strong', null, ['#' + (event.createdRoom || '?')])]
            : [el(doc, 'strong', null, [nick]), NOTICES[event.type] || ' ' + event.type]),
        time
      ]);
    }
    var mine = event.user && event.user.id === this.myUserId;
    var grouped = continues(previous, event);
    attrs.className = 'msg message' + (mine ? ' mine' : '') + (grouped ? ' continued' : '');
    return el(doc, 'li', attrs, [
      grouped ? el(doc, 'span', { className: 'avatar-space' }) : dom.avatar(doc, nick),
      el(doc, 'div', { className: 'msg-body' }, [
        grouped ? null : el(doc, 'div', { className: 'msg-head' }, [el(doc, 'span', { className: 'msg-nick' }, [nick]), ' ', time]),
        el(doc, 'div', { className: 'msg-text' }, [String(event.text)])
      ])
    ]);
  };

  // ---- pending posts (chat-outbox.js items) ----

  MessagePane.prototype.pendingHead = function () {
    return this.pendingKeys.length > 0 ? this.pendingNodes[this.pendingKeys[0]] : null;
  };

  var PENDING_LABELS = { queued: 'Waiting to send…', sending: 'Sending…', retrying: 'Not sent yet', failed: 'Not sent' };

  /**
   * Shows or updates a pending post. `status` is the line under it (what went
   * wrong and what happens next); a refused post offers Retry and Discard.
   */
  MessagePane.prototype.showPending = function (item, status) {
    var doc = this.doc;
    var stick = this.nearBottom();
    var failed = item.state === 'failed';
    var node = el(doc, 'li', {
      className: 'msg pending mine',
      'data-pending-key': item.key,
      'data-state': item.state
    }, [
      el(doc, 'span', { className: 'avatar-space' }),
      el(doc, 'div', { className: 'msg-body' }, [
        el(doc, 'div', { className: 'msg-text' }, [String(item.text)]),
        el(doc, 'div', { className: 'pending-status' }, [
          el(doc, 'span', { className: 'pending-text' }, [status || PENDING_LABELS[item.state] || '']),
          failed ? el(doc, 'button', { type: 'button', className: 'quiet small', 'data-pending-action': 'retry', 'data-key': item.key }, ['Retry']) : null,
          failed ? el(doc, 'button', { type: 'button', className: 'quiet small', 'data-pending-action': 'discard', 'data-key': item.key }, ['Discard']) : null
        ])
      ])
    ]);
    var old = this.pendingNodes[item.key];
    if (old) {
      // Still hidden as echoed (hidePending) unless it failed after all: a refusal must show.
      if (old.style.display === 'none' && !failed) node.style.display = 'none';
      this.list.replaceChild(node, old);
    } else {
      this.list.appendChild(node);
      this.pendingKeys.push(item.key);
    }
    this.pendingNodes[item.key] = node;
    dom.show(this.empty, false);
    if (stick) this.scrollToBottom();
  };

  MessagePane.prototype.removePending = function (key) {
    var node = this.pendingNodes[key];
    if (!node) return;
    this.list.removeChild(node);
    delete this.pendingNodes[key];
    this.pendingKeys.splice(CometChat.util.indexOf(this.pendingKeys, key), 1);
    dom.show(this.empty, this.ids.length === 0 && this.pendingKeys.length === 0);
  };

  /**
   * The poll brought one of our posts before its POST answered (or before a resend
   * learned it was committed): hide the pending copy so the message is not shown
   * twice meanwhile. It stays in the outbox until the server answers, so nothing is lost.
   */
  MessagePane.prototype.hidePending = function (key) {
    var node = this.pendingNodes[key];
    if (node) node.style.display = 'none';
  };

  /** Follow new messages only if the reader is already at the bottom (not while reading older ones). */
  MessagePane.prototype.nearBottom = function () {
    var list = this.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  };

  MessagePane.prototype.scrollToBottom = function () {
    this.list.scrollTop = this.list.scrollHeight;
  };

  // ---- RoomList -------------------------------------------------------------

  /** joinedNode/availableNode: <ul>s. onSelect(room) for a joined room, onJoin(room) for another. */
  function RoomList(doc, joinedNode, availableNode, onSelect, onJoin) {
    this.doc = doc;
    this.joinedNode = joinedNode;
    this.availableNode = availableNode;
    CometChat.util.listen(joinedNode, 'click', function (event) {
      var item = dom.closestWithAttr(dom.target(event), 'data-room', joinedNode);
      if (item) onSelect(item.getAttribute('data-room'));
    });
    CometChat.util.listen(availableNode, 'click', function (event) {
      var button = dom.closestWithAttr(dom.target(event), 'data-join', availableNode);
      if (button) onJoin(button.getAttribute('data-join'));
    });
  }

  /** rooms: names in order; unread: {room: count}. */
  RoomList.prototype.renderJoined = function (rooms, active, unread) {
    var doc = this.doc;
    dom.clear(this.joinedNode);
    for (var i = 0; i < rooms.length; i++) {
      var room = rooms[i];
      var count = unread[room] || 0;
      var item = el(doc, 'li', {
        className: 'room-item' + (room === active ? ' active' : '') + (count > 0 ? ' has-unread' : ''),
        'data-room': room,
        'data-unread': count
      }, [
        el(doc, 'button', { type: 'button', className: 'room-button', 'aria-current': room === active ? 'true' : null }, [
          el(doc, 'span', { className: 'room-hash', 'aria-hidden': 'true' }, ['#']),
          el(doc, 'span', { className: 'room-name' }, [room]),
          count > 0 ? el(doc, 'span', { className: 'badge', title: count + ' unread' }, [count > 99 ? '99+' : String(count)]) : null
        ])
      ]);
      this.joinedNode.appendChild(item);
    }
  };

  /** rooms: [{name, members}] from the API; those already joined are left out. */
  RoomList.prototype.renderAvailable = function (rooms, isJoined) {
    var doc = this.doc;
    dom.clear(this.availableNode);
    var shown = 0;
    for (var i = 0; i < rooms.length; i++) {
      if (isJoined(rooms[i].name)) continue;
      shown++;
      this.availableNode.appendChild(el(doc, 'li', { className: 'room-item available', 'data-available': rooms[i].name }, [
        el(doc, 'span', { className: 'room-name' }, ['#' + rooms[i].name]),
        el(doc, 'span', { className: 'room-count', title: 'members' }, [String(rooms[i].members)]),
        el(doc, 'button', { type: 'button', className: 'join-button', 'data-join': rooms[i].name }, ['Join'])
      ]));
    }
    if (shown === 0) this.availableNode.appendChild(el(doc, 'li', { className: 'hint' }, ['You are in every room.']));
  };

  // ---- MemberList -----------------------------------------------------------

  function MemberList(doc, node, countNode) {
    this.doc = doc;
    this.node = node;
    this.countNode = countNode;
  }

  /** members: [{id, nick, online}]; online first, then by nick. */
  MemberList.prototype.render = function (members, myUserId) {
    var doc = this.doc;
    var sorted = members.slice().sort(function (a, b) {
      if (a.online !== b.online) return a.online ? -1 : 1;
      return a.nick.toLowerCase() < b.nick.toLowerCase() ? -1 : a.nick.toLowerCase() > b.nick.toLowerCase() ? 1 : 0;
    });
    var online = 0;
    dom.clear(this.node);
    for (var i = 0; i < sorted.length; i++) {
      var m = sorted[i];
      if (m.online) online++;
      this.node.appendChild(el(doc, 'li', {
        className: 'member' + (m.online ? ' online' : ' offline'),
        'data-user-id': m.id,
        'data-online': m.online ? 'true' : 'false'
      }, [
        dom.avatar(doc, m.nick),
        el(doc, 'span', { className: 'member-nick' }, [m.nick + (m.id === myUserId ? ' (you)' : '')]),
        el(doc, 'span', { className: 'presence-dot', title: m.online ? 'online' : 'offline' })
      ]));
    }
    dom.setText(this.countNode, online + ' online · ' + sorted.length + ' members');
  };

  MemberList.prototype.clear = function () {
    dom.clear(this.node);
    dom.setText(this.countNode, '');
  };

  CometChat.views = { MessagePane: MessagePane, RoomList: RoomList, MemberList: MemberList };
}(this));
