/*
 * chat-account.js: the signed-in user's account controls, in an Account menu
 * of the header (beside Members and Transport, at every width): change nick (PATCH /api/session) and sign out (DELETE
 * /api/session). chat-ui.js wires it with one call, `CometChat.account.attach(app)`;
 * everything else lives here, so the page controller stays as it is.
 *
 * Other tabs of the same browser follow without any messaging of their own: a
 * sign-out ends the session on the server, whose /close/ answers every parked
 * poll with 401 (the client's 'session-lost', which shows the sign-in form), and
 * a nick change reaches every tab as a `nick` event in the user's rooms.
 *
 * DOM hooks for tests: #account-toggle, #account-menu, #change-nick, #sign-out, #nick-form, #new-nick,
 * #nick-error (data-code), and #login-error gets data-code on a refused sign-in.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var dom = CometChat.dom;
  var el = dom.el;
  var util = CometChat.util;
  var SIGNED_OUT = 'You have signed out.';

  function Account(app) {
    this.app = app;
    this.doc = app.doc;
    this.busy = false;
    this.$ = {};
  }

  /**
   * Builds an Account button in the header's actions and its menu (signed in as, change nick, sign out, the
   * nick form), styled like the Transport menu so it fits the header at every width; listens to them and to
   * the client.
   */
  Account.prototype.attach = function () {
    var self = this;
    var doc = this.doc;
    var $ = this.$;
    var actions = doc.querySelector ? doc.querySelector('.topbar-actions') : null;
    if (!actions) return this;
    $.toggle = el(doc, 'button', { id: 'account-toggle', type: 'button', className: 'topbar-button', title: 'Your nickname, sign out' }, ['Account']);
    $.toggle.setAttribute('aria-controls', 'account-menu');
    $.toggle.setAttribute('aria-expanded', 'false');
    $.nick = el(doc, 'strong', { id: 'account-nick' });
    $.change = el(doc, 'button', { id: 'change-nick', type: 'button', title: 'Choose another nickname' }, ['Change nick']);
    $.signOut = el(doc, 'button', { id: 'sign-out', type: 'button' }, ['Sign out']);
    $.input = el(doc, 'input', { id: 'new-nick', type: 'text', autocomplete: 'nickname' });
    $.error = el(doc, 'p', { id: 'nick-error', className: 'warning-text', role: 'alert' });
    $.form = el(doc, 'form', { id: 'nick-form', className: 'nick-form is-hidden' }, [
      el(doc, 'label', { 'for': 'new-nick' }, ['New nickname']),
      $.input,
      el(doc, 'div', { className: 'menu-buttons' }, [el(doc, 'button', { type: 'submit' }, ['Save']), $.cancel = el(doc, 'button', { type: 'button' }, ['Cancel'])]),
      $.error
    ]);
    $.menu = el(doc, 'div', { id: 'account-menu', className: 'menu is-hidden', role: 'group' }, [
      el(doc, 'h2', { id: 'account-title' }, ['Signed in as ', $.nick]),
      el(doc, 'div', { className: 'menu-buttons' }, [$.change, $.signOut]),
      $.form
    ]);
    $.menu.setAttribute('aria-labelledby', 'account-title');
    var me = doc.getElementById('me');
    var meBox = me ? me.parentNode : null;
    actions.insertBefore($.toggle, meBox && meBox.parentNode === actions ? meBox.nextSibling : actions.firstChild);
    actions.parentNode.insertBefore($.menu, actions.nextSibling);

    util.listen($.toggle, 'click', function () { self.showMenu(/is-hidden/.test($.menu.className)); });
    // One header menu at a time: the other toggles close this one.
    util.listen(actions, 'click', function (e) {
      var target = e.target || e.srcElement;
      while (target && target !== actions && target.tagName !== 'BUTTON') target = target.parentNode;
      if (target && target !== $.toggle && target.tagName === 'BUTTON') self.showMenu(false);
    });
    util.listen($.change, 'click', function () { self.openForm(); });
    util.listen($.cancel, 'click', function () { self.closeForm(); });
    util.listen($.form, 'submit', function (e) { dom.preventDefault(e); self.changeNick(); });
    util.listen($.signOut, 'click', function () { self.signOut(); });
    util.listen(doc, 'keydown', function (e) {
      if ((e.key === 'Escape' || e.keyCode === 27) && !/is-hidden/.test($.menu.className)) {
        self.showMenu(false);
        try { $.toggle.focus(); } catch (err) { /* not focusable right now */ }
      }
    });
    this.app.client.on('events', function (room, events) { self.onEvents(room, events); });
    this.watchLogin();
    this.watchSignOut();
    return this;
  };

  /** Opens (with the current nick) or closes the account menu. */
  Account.prototype.showMenu = function (open) {
    var $ = this.$;
    if (open) dom.setText($.nick, this.app.user ? this.app.user.nick : '');
    else this.closeForm();
    dom.show($.menu, open);
    $.toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (open) {
      try { $.change.focus(); } catch (e) { /* not focusable right now */ }
    }
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
      self.showMenu(false);
    });
  };

  /** The user's own nick changed, here or in another tab (a `nick` event about them). */
  Account.prototype.showNick = function (user) {
    var app = this.app;
    if (!app.user || user.id !== app.user.id) return;
    app.user.nick = user.nick;
    if (app.client.user) app.client.user.nick = user.nick;
    dom.setText(this.doc.getElementById('me'), user.nick);
    dom.setText(this.$.nick, user.nick);
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
      self.showMenu(false);
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
