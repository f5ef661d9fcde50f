/*
 * chat-layout.js: the page's panels at every width. The rooms list, the
 * members panel and the Transport menu each have a toggle button in the header
 * (aria-expanded says whether its panel shows); chat.css does the rest from
 * two attributes on <body>:
 *
 *   data-rooms   "open" | "closed"   wide: a column that can be collapsed;
 *                                      up to SMALL_MAX_PX: a drawer over the room
 *   data-members "open" | "closed"   up to MEDIUM_MAX_PX a drawer; wider, always shown
 *
 * The breakpoints below must match the @media rules of chat.css. A drawer or
 * the menu closes on Escape (focus goes back to its toggle) or a click on the
 * dimmed room behind it; choosing a room in the drawer closes it too. While one
 * is open, Tab and Shift+Tab cycle through its controls (a focus trap: the room
 * behind is covered, so focus must not wander there unseen).
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;
  var dom = CometChat.dom;

  var SMALL_MAX_PX = 700;
  var MEDIUM_MAX_PX = 980;

  /** $: the page's elements by id (chat-ui.js `this.$`). */
  function Layout(doc, win, $) {
    var self = this;
    this.doc = doc;
    this.win = win;
    this.$ = $;
    this.size = this.measure();
    this.rooms = this.size === 'small' ? 'closed' : 'open';
    this.members = 'closed';
    this.menu = false;
    util.listen($['rooms-toggle'], 'click', function () { self.toggleRooms(); });
    util.listen($['members-toggle'], 'click', function () { self.toggleMembers(); });
    util.listen($['transport-toggle'], 'click', function () { self.toggleMenu(); });
    util.listen($.scrim, 'click', function () { self.closeOverlays(null); });
    util.listen(doc, 'keydown', function (e) { self.onKey(e); });
    util.listen(win, 'resize', function () { self.onResize(); });
    this.render();
  }

  Layout.prototype.measure = function () {
    var width = this.win.innerWidth || this.doc.documentElement.clientWidth || 1024;
    return width <= SMALL_MAX_PX ? 'small' : width <= MEDIUM_MAX_PX ? 'medium' : 'wide';
  };

  /** True when the rooms list covers the room (it must close once a room is chosen). */
  Layout.prototype.roomsIsDrawer = function () {
    return this.size === 'small';
  };

  Layout.prototype.membersIsDrawer = function () {
    return this.size !== 'wide';
  };

  Layout.prototype.toggleRooms = function () {
    this.rooms = this.rooms === 'open' ? 'closed' : 'open';
    if (this.rooms === 'open' && this.roomsIsDrawer()) {
      this.members = 'closed';
      this.menu = false;
    }
    this.render();
    if (this.rooms === 'open') this.focusFirst(this.$.sidebar);
  };

  Layout.prototype.toggleMembers = function () {
    this.members = this.members === 'open' ? 'closed' : 'open';
    if (this.members === 'open') {
      this.menu = false;
      if (this.roomsIsDrawer()) this.rooms = 'closed';
    }
    this.render();
  };

  Layout.prototype.toggleMenu = function () {
    this.menu = !this.menu;
    if (this.menu) {
      if (this.roomsIsDrawer()) this.rooms = 'closed';
      if (this.membersIsDrawer()) this.members = 'closed';
    }
    this.render();
    if (this.menu) this.focusFirst(this.$['transport-menu']);
  };

  /** A room was chosen: a rooms drawer has done its job. */
  Layout.prototype.roomChosen = function () {
    if (this.roomsIsDrawer() && this.rooms === 'open') {
      this.rooms = 'closed';
      this.render();
    }
  };

  /** Closes the menu and any drawer; `focusTo` (a toggle) gets the focus back. */
  Layout.prototype.closeOverlays = function (focusTo) {
    this.menu = false;
    if (this.roomsIsDrawer()) this.rooms = 'closed';
    if (this.membersIsDrawer()) this.members = 'closed';
    this.render();
    if (focusTo) focus(focusTo);
  };

  /** The open menu or drawer, or null. */
  Layout.prototype.openOverlay = function () {
    var $ = this.$;
    if (this.menu) return $['transport-menu'];
    if (this.members === 'open' && this.membersIsDrawer()) return $['members-panel'];
    if (this.rooms === 'open' && this.roomsIsDrawer()) return $.sidebar;
    return null;
  };

  Layout.prototype.onKey = function (event) {
    if (event.keyCode === 9) { // Tab
      this.trapFocus(event);
      return;
    }
    if (event.keyCode !== 27) return; // Escape
    var $ = this.$;
    var back = this.menu ? $['transport-toggle'] : this.members === 'open' && this.membersIsDrawer() ? $['members-toggle'] :
      this.rooms === 'open' && this.roomsIsDrawer() ? $['rooms-toggle'] : null;
    if (back) this.closeOverlays(back);
  };

  /** Crossing a breakpoint starts over with that width's defaults (a drawer left open would cover the room). */
  Layout.prototype.onResize = function () {
    var size = this.measure();
    if (size === this.size) return;
    this.size = size;
    this.rooms = size === 'small' ? 'closed' : 'open';
    this.members = 'closed';
    this.render();
  };

  Layout.prototype.render = function () {
    var $ = this.$;
    var body = this.doc.body;
    body.setAttribute('data-rooms', this.rooms);
    body.setAttribute('data-members', this.members);
    $['rooms-toggle'].setAttribute('aria-expanded', this.rooms === 'open' ? 'true' : 'false');
    $['members-toggle'].setAttribute('aria-expanded', this.members === 'open' || !this.membersIsDrawer() ? 'true' : 'false');
    $['transport-toggle'].setAttribute('aria-expanded', this.menu ? 'true' : 'false');
    dom.show($['transport-menu'], this.menu);
    var covered = (this.rooms === 'open' && this.roomsIsDrawer()) || (this.members === 'open' && this.membersIsDrawer());
    dom.show($.scrim, covered);
  };

  /** Tab in an open menu or drawer: from its last control to its first (Shift: first to last), and back in from outside. */
  Layout.prototype.trapFocus = function (event) {
    var overlay = this.openOverlay();
    if (!overlay) return;
    var controls = this.controls(overlay);
    if (controls.length === 0) return;
    var first = controls[0];
    var last = controls[controls.length - 1];
    var active = this.doc.activeElement;
    var inside = contains(overlay, active);
    var to = !inside ? (event.shiftKey ? last : first) : event.shiftKey && active === first ? last : !event.shiftKey && active === last ? first : null;
    if (to === null) return;
    dom.preventDefault(event);
    focus(to);
  };

  /** The enabled, shown buttons, selects and inputs inside `node`, in document order. */
  Layout.prototype.controls = function (node) {
    var all = node.getElementsByTagName('*');
    var out = [];
    for (var i = 0; i < all.length; i++) {
      var tag = all[i].tagName;
      if ((tag === 'BUTTON' || tag === 'SELECT' || tag === 'INPUT') && !all[i].disabled && all[i].offsetWidth + all[i].offsetHeight > 0) out.push(all[i]);
    }
    return out;
  };

  /** The first control inside `node`, focused (keyboard users land in what they opened). */
  Layout.prototype.focusFirst = function (node) {
    var controls = this.controls(node);
    if (controls.length > 0) focus(controls[0]);
  };

  function contains(node, other) {
    for (var n = other; n; n = n.parentNode) {
      if (n === node) return true;
    }
    return false;
  }

  function focus(node) {
    try {
      node.focus();
    } catch (e) { /* hidden in old IE */ }
  }

  Layout.SMALL_MAX_PX = SMALL_MAX_PX;
  Layout.MEDIUM_MAX_PX = MEDIUM_MAX_PX;
  CometChat.Layout = Layout;
}(this));
