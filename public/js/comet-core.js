/*
 * comet-core.js: the CometChat namespace and the helpers the other files share.
 *
 * Everything under public/ is ES5 in one IIFE per file (test/public/es5.test.ts
 * parses it with ecmaVersion 5), so the client runs in old browsers as well:
 * XMLHttpRequest and callbacks, no Promise/fetch. Where browsers differ we
 * detect the feature and fall back in a fixed order (addEventListener before
 * attachEvent, XMLHttpRequest before ActiveX).
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat || (window.CometChat = {});
  var util = CometChat.util = {};

  function noop() {}
  util.noop = noop;

  util.now = Date.now || function () { return new Date().getTime(); };

  util.hasOwn = function (obj, key) {
    return Object.prototype.hasOwnProperty.call(obj, key);
  };

  /** Array.prototype.indexOf is missing in IE8. */
  util.indexOf = function (list, item) {
    for (var i = 0; i < list.length; i++) {
      if (list[i] === item) return i;
    }
    return -1;
  };

  util.isArray = Array.isArray || function (value) {
    return Object.prototype.toString.call(value) === '[object Array]';
  };

  /**
   * An Error carrying a machine-readable `code` (COMET_ERR_* for the client's
   * own failures, APP_ERR_* / PROXY_ERR_* passed through from the server) and
   * the HTTP `status` (0 when there was no answer). Callers branch on codes,
   * never on message text.
   */
  util.error = function (code, message, status) {
    var err = new Error(message);
    err.code = code;
    err.status = status || 0;
    return err;
  };

  /**
   * The answer says this browser has no usable session: none, expired or signed
   * out (docs/chat-api.md). Callers stop and ask the user to sign in; retrying
   * cannot help.
   */
  util.isSessionGone = function (err) {
    return !!err && (err.code === 'APP_ERR_NO_SESSION' || err.code === 'APP_ERR_SESSION_EXPIRED' || err.code === 'APP_ERR_SESSION_ENDED');
  };

  /** JSON.parse without throwing: {ok, value}. JSON is native from IE8 on. */
  util.parseJson = function (text) {
    if (typeof text !== 'string' || text === '') return { ok: false, value: null };
    try {
      return { ok: true, value: window.JSON.parse(text) };
    } catch (e) {
      return { ok: false, value: null };
    }
  };

  util.stringify = function (value) {
    return window.JSON.stringify(value);
  };

  /** DOM events: addEventListener, else IE8's attachEvent. Returns a remover. */
  util.listen = function (target, type, handler) {
    if (target.addEventListener) {
      target.addEventListener(type, handler, false);
      return function () { target.removeEventListener(type, handler, false); };
    }
    if (target.attachEvent) {
      var wrapped = function () { return handler.call(target, window.event); };
      target.attachEvent('on' + type, wrapped);
      return function () { target.detachEvent('on' + type, wrapped); };
    }
    return noop;
  };

  /** Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): a random delay in [0, min(cap, base * 2^attempt)). */
  util.backoffMs = function (attempt, baseMs, capMs, random) {
    var ceiling = Math.min(capMs, baseMs * Math.pow(2, Math.min(attempt, 30)));
    return Math.floor((random || Math.random)() * ceiling);
  };

  /** Is `host` the base domain itself or one of its subdomains? Case-insensitive, no ports. */
  util.hostInDomain = function (host, baseDomain) {
    if (!host || !baseDomain) return false;
    host = String(host).toLowerCase();
    baseDomain = String(baseDomain).toLowerCase();
    if (host === baseDomain) return true;
    var suffix = '.' + baseDomain;
    return host.length > suffix.length && host.slice(host.length - suffix.length) === suffix;
  };

  /** `scheme://host[:port]` of a location-like object. `location.origin` is missing in old IE. */
  util.originOf = function (loc) {
    return loc.protocol + '//' + loc.host;
  };

  /** The value of `name` in a query string such as `?a=1&b=2`, or null. */
  util.queryParam = function (search, name) {
    var pairs = String(search || '').replace(/^\?/, '').split('&');
    for (var i = 0; i < pairs.length; i++) {
      var eq = pairs[i].indexOf('=');
      var key = eq === -1 ? pairs[i] : pairs[i].slice(0, eq);
      if (safeDecode(key) === name) return eq === -1 ? '' : safeDecode(pairs[i].slice(eq + 1));
    }
    return null;
  };

  function safeDecode(text) {
    try {
      return decodeURIComponent(text.replace(/\+/g, ' '));
    } catch (e) {
      return text;
    }
  }

  /** `getAllResponseHeaders()` text -> {lower-case name: value}. */
  util.parseHeaders = function (raw) {
    var headers = {};
    var lines = String(raw || '').split(/\r?\n/);
    for (var i = 0; i < lines.length; i++) {
      var colon = lines[i].indexOf(':');
      if (colon <= 0) continue;
      var name = lines[i].slice(0, colon).replace(/^\s+|\s+$/g, '').toLowerCase();
      headers[name] = lines[i].slice(colon + 1).replace(/^\s+|\s+$/g, '');
    }
    return headers;
  };

  /**
   * A new XMLHttpRequest. IE6 only has the ActiveX versions; IE7+ and every
   * other browser have the native object, tried first.
   */
  util.createXhr = function () {
    if (window.XMLHttpRequest) return new window.XMLHttpRequest();
    var progIds = ['Msxml2.XMLHTTP.6.0', 'Msxml2.XMLHTTP', 'Microsoft.XMLHTTP'];
    for (var i = 0; i < progIds.length; i++) {
      try {
        return new window.ActiveXObject(progIds[i]);
      } catch (e) { /* try the next one */ }
    }
    throw util.error('COMET_ERR_NO_XHR', 'this browser has no XMLHttpRequest');
  };

  /**
   * A small event emitter, mixed into the client and the UI views.
   * A listener that throws does not stop the others; the error is rethrown
   * asynchronously so it still reaches window.onerror and the console.
   */
  function Emitter() {}

  Emitter.prototype.on = function (name, listener) {
    var all = this._listeners || (this._listeners = {});
    (all[name] || (all[name] = [])).push(listener);
    return this;
  };

  Emitter.prototype.off = function (name, listener) {
    var list = this._listeners && this._listeners[name];
    if (!list) return this;
    var i = util.indexOf(list, listener);
    if (i !== -1) list.splice(i, 1);
    return this;
  };

  Emitter.prototype.emit = function (name) {
    var list = this._listeners && this._listeners[name];
    if (!list) return;
    var args = Array.prototype.slice.call(arguments, 1);
    list = list.slice();
    for (var i = 0; i < list.length; i++) {
      try {
        list[i].apply(this, args);
      } catch (e) {
        rethrowLater(e);
      }
    }
  };

  function rethrowLater(err) {
    window.setTimeout(function () { throw err; }, 0);
  }

  util.Emitter = Emitter;

  /** Copies Emitter's methods onto a constructor's prototype (ES5 has no classes to extend). */
  util.mixinEmitter = function (Ctor) {
    for (var key in Emitter.prototype) {
      if (util.hasOwn(Emitter.prototype, key)) Ctor.prototype[key] = Emitter.prototype[key];
    }
  };
}(this));
