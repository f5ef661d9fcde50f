/*
 * chat-account.js: the signed-in user's account controls, next to "Signed in
 * as" in the header: change nick (PATCH /api/session) and sign out (DELETE
 * /api/session). chat-ui.js wires it with one call, `CometChat.account.attach(app)`;
 * everything else lives here, so the page controller stays as it is.
 *
 * Other tabs of the same browser follow without any messaging of their own: a
 * sign-out ends the session on the server, whose /close/ answers every parked
 * poll with 401 (the client's 'session-lost', which shows the sign-in form), and
 * a nick change reaches every tab as a `nick` event in the user's rooms.
 *
 * DOM hooks for tests: #change-nick, #sign-out, #nick-form, #new-nick,
 * #nick-error (data-code), and #login-error gets data-code on a refused sign-in.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var dom = CometChat.dom;
  var el = dom.el;
  var util = CometChat.util;
  var SIGNED_OUT = 'You have signed out.';
  var BUTTON_STYLE = 'background: transparent; color: inherit; border: 1px solid currentColor; border-radius: 4px; ' +
    'padding: 2px 8px; margin-left: 8px; font: inherit; font-size: 0.85em; cursor: pointer; white-space: nowrap;';

  function Account(app) {
    this.app = app;
    this.doc = app.doc;
    this.busy = false;
    this.$ = {};
  }

  /** Builds the controls after #me and listens to them and to the client. */
  Account.prototype.attach = function () {
    var self = this;
    var doc = this.doc;
    var $ = this.$;
    var me = doc.getElementById('me');
    if (!me || !me.parentNode) return this;
    $.change = el(doc, 'button', { id: 'change-nick', type: 'button', className: 'link-button', title: 'Choose another nickname' }, ['Change nick']);
    $.signOut = el(doc, 'button', { id: 'sign-out', type: 'button', className: 'link-button' }, ['Sign out']);
    $.input = el(doc, 'input', { id: 'new-nick', type: 'text', maxlength: 32, autocomplete: 'nickname' });
    $.error = el(doc, 'span', { id: 'nick-error', className: 'error', role: 'alert' });
    $.form = el(doc, 'form', { id: 'nick-form', className: 'nick-form is-hidden' }, [
      el(doc, 'label', { 'for': 'new-nick' }, ['New nickname ']),
      $.input,
      el(doc, 'button', { type: 'submit' }, ['Save']),
      $.cancel = el(doc, 'button', { type: 'button' }, ['Cancel']),
      $.error
    ]);
    // Inline, so these controls look right on the header whatever the page's stylesheet does (public/css is the
    // layout's); a stylesheet rule for #change-nick / #sign-out may replace this.
    $.change.style.cssText = $.signOut.style.cssText = BUTTON_STYLE;
    $.form.style.cssText = 'margin-left: 8px; font-size: 0.9em;';
    var box = me.parentNode;
    box.appendChild($.change);
    box.appendChild($.signOut);
    box.parentNode.insertBefore($.form, box.nextSibling);

    util.listen($.change, 'click', function () { self.openForm(); });
    util.listen($.cancel, 'click', function () { self.closeForm(); });
    util.listen($.form, 'submit', function (e) { dom.preventDefault(e); self.changeNick(); });
    util.listen($.signOut, 'click', function () { self.signOut(); });
    this.app.client.on('events', function (room, events) { self.onEvents(room, events); });
    this.watchLogin();
    this.watchSignOut();
    return this;
  };

  Account.prototype.openForm = function () {
    this.$.input.value = this.app.user ? this.app.user.nick : '';
    this.setError(null);
    dom.show(this.$.form, true);
    try {
      this.$.input.focus();
      this.$.input.select();
    } catch (e) { /* not focusable right now */ }
  };

  Account.prototype.closeForm = function () {
    this.setError(null);
    dom.show(this.$.form, false);
  };

  Account.prototype.setError = function (err) {
    dom.setText(this.$.error, err ? err.message : '');
    if (err) this.$.error.setAttribute('data-code', err.code);
    else this.$.error.removeAttribute('data-code');
  };

  Account.prototype.changeNick = function () {
    var self = this;
    var nick = this.$.input.value.replace(/^\s+|\s+$/g, '');
    if (nick === '' || this.busy) return;
    this.busy = true;
    this.app.client.api.call('PATCH', '/api/session', { nick: nick }, function (err, body) {
      self.busy = false;
      if (err) {
        // 409 APP_ERR_NICK_TAKEN, 400 APP_ERR_INVALID_NICK: the server's message says what to do.
        self.setError(err);
        return;
      }
      self.showNick(body.user);
      self.closeForm();
    });
  };

  /** The user's own nick changed, here or in another tab (a `nick` event about them). */
  Account.prototype.showNick = function (user) {
    var app = this.app;
    if (!app.user || user.id !== app.user.id) return;
    app.user.nick = user.nick;
    if (app.client.user) app.client.user.nick = user.nick;
    dom.setText(this.doc.getElementById('me'), user.nick);
  };

  /**
   * Follows nick events about the user; and since signing in posts nothing (a quiet lobby), someone the members
   * panel does not list yet who speaks makes it look again (it also looks every 30 s).
   */
  Account.prototype.onEvents = function (room, events) {
    var unknown = false;
    for (var i = 0; i < events.length; i++) {
      var user = events[i].user;
      if (!user) continue;
      if (events[i].type === 'nick') this.showNick(user);
      if (room === this.app.active && !this.listed(user.id)) unknown = true;
    }
    if (unknown) this.app.refreshMembersSoon();
  };

  Account.prototype.listed = function (userId) {
    var items = this.doc.getElementById('members');
    items = items ? items.getElementsByTagName('li') : [];
    for (var i = 0; i < items.length; i++) {
      if (items[i].getAttribute('data-user-id') === String(userId)) return true;
    }
    return false;
  };

  Account.prototype.signOut = function () {
    var self = this;
    if (this.busy) return;
    this.busy = true;
    this.signingOut = true;
    this.$.signOut.disabled = true;
    this.app.client.api.call('DELETE', '/api/session', null, function (err, body, status) {
      self.busy = false;
      self.$.signOut.disabled = false;
      // 204 has no body, which Api.call reports as "not JSON"; a session that had ended already (another tab
      // signed out first) is signed out too.
      if (err && status !== 204 && !util.isSessionGone(err)) {
        self.signingOut = false;
        self.app.notice('Could not sign out: ' + err.message);
        return;
      }
      self.closeForm();
      // Stops the polls and shows the sign-in form (chat-ui's 'session-lost'), unless the poll's 401 did first.
      self.app.client.sessionLost(util.error('COMET_SIGNED_OUT', 'You signed out.', 204));
      if (self.signingOut) self.app.showLogin(SIGNED_OUT);
    });
  };

  /**
   * While this tab signs out, the sign-in form says so, whichever comes first: the DELETE's answer, or the poll
   * the server ends with 401 (chat-ui's "Your session has ended").
   */
  Account.prototype.watchSignOut = function () {
    var self = this;
    var app = this.app;
    var showLogin = app.showLogin;
    app.showLogin = function (message) {
      if (self.signingOut) {
        message = SIGNED_OUT;
        self.signingOut = false;
      }
      return showLogin.call(app, message);
    };
  };

  /** Marks a refused sign-in with its code (#login-error[data-code]), e.g. APP_ERR_NICK_TAKEN. */
  Account.prototype.watchLogin = function () {
    var client = this.app.client;
    var doc = this.doc;
    var login = client.login;
    client.login = function (nick, callback) {
      login.call(client, nick, function (err, user) {
        var node = doc.getElementById('login-error');
        if (node && err) node.setAttribute('data-code', err.code);
        else if (node) node.removeAttribute('data-code');
        callback(err, user);
      });
    };
  };

  CometChat.account = {
    Account: Account,
    attach: function (app) { return new Account(app).attach(); }
  };
}(this));
