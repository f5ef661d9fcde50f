/*
 * comet-bridge-client.js: a transport whose requests run on another host of
 * the same base domain (a shard, `c1.chat.test`), through the bridge page
 * (public/bridge.html) loaded from that host in a hidden iframe.
 *
 * Why a bridge: browsers cap concurrent HTTP/1.1 connections per host name
 * (6 in Chromium), so long-polls are spread over shard host names; but XHR is
 * same-origin only (and old browsers have no CORS), so the page cannot call a
 * shard itself. The bridge, served by the shard, can. Ways to reach it, in order:
 *
 *  1. document.domain: page and bridge both set it to the base domain, which
 *     makes them same-origin for scripting (HTML "relaxing the same-origin
 *     restriction"); the page then calls `CometBridge.request` in the iframe
 *     directly. Browsers are retiring this: Chromium ignores the setter in
 *     origin-keyed agent clusters (the default unless both documents send
 *     `Origin-Agent-Cluster: ?0`), and reading the iframe's globals then throws.
 *  2. postMessage: JSON strings (IE8 posts strings only), one id per request,
 *     the target origin always named and `event.origin` checked on both sides.
 *  3. Neither ready within `readyTimeoutMs`: the fallback transport (the page's
 *     own host), slower under the connection cap but working.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;

  /** Bridge messages carry this marker so unrelated postMessage traffic is ignored. */
  var MARKER = 1;

  /**
   * options: origin ('http://c1.chat.test:8080'), baseDomain ('chat.test'),
   * fallback (a transport), readyTimeoutMs (default 10000), onMode(mode) (optional),
   * window and timers ({setTimeout, clearTimeout}; default the window's), injectable for tests.
   */
  function BridgeTransport(options) {
    this.origin = options.origin;
    this.baseDomain = options.baseDomain;
    this.fallback = options.fallback;
    this.readyTimeoutMs = options.readyTimeoutMs || 10000;
    this.onMode = options.onMode || util.noop;
    this.window = options.window || window;
    var win = this.window;
    this.timers = options.timers || {
      setTimeout: function (fn, ms) { return win.setTimeout(fn, ms); },
      clearTimeout: function (id) { win.clearTimeout(id); }
    };
    /** 'idle' | 'pending' | 'document.domain' | 'postMessage' | 'fallback' */
    this.mode = 'idle';
    this.queue = [];
    this.calls = {};
    this.nextId = 1;
    this.iframe = null;
    this.bridge = null;
    this.readySeen = false;
    this.timer = null;
    this.unlisten = util.noop;
  }

  BridgeTransport.prototype.kind = 'bridge';

  BridgeTransport.prototype.request = function (method, path, bodyText, callback) {
    var self = this;
    var call = { method: method, path: path, bodyText: bodyText, callback: callback, inner: null, aborted: false };
    if (this.mode === 'idle') this.open();
    if (this.mode === 'pending') this.queue.push(call);
    else this.dispatch(call);
    return {
      abort: function () {
        if (call.aborted) return;
        call.aborted = true;
        if (call.inner) call.inner.abort();
        var i = util.indexOf(self.queue, call);
        if (i !== -1) self.queue.splice(i, 1);
      }
    };
  };

  /** Loads the bridge; requests wait in the queue until a mode is chosen. */
  BridgeTransport.prototype.open = function () {
    var self = this;
    var win = this.window;
    var doc = win.document;
    this.mode = 'pending';
    if (!win.postMessage && !('domain' in doc)) {
      this.setMode('fallback', null);
      return;
    }
    var iframe = doc.createElement('iframe');
    iframe.title = 'connection bridge to ' + this.origin;
    iframe.setAttribute('aria-hidden', 'true');
    iframe.tabIndex = -1;
    iframe.style.cssText = 'position:absolute;left:-9999px;top:-9999px;width:1px;height:1px;border:0;visibility:hidden';
    iframe.src = this.origin + '/bridge.html?base=' + encodeURIComponent(this.baseDomain) +
      '&parent=' + encodeURIComponent(util.originOf(win.location));
    this.iframe = iframe;

    var stopMessages = util.listen(win, 'message', function (event) { self.onMessage(event); });
    var stopLoad = util.listen(iframe, 'load', function () { self.decide(); });
    this.unlisten = function () { stopMessages(); stopLoad(); };
    this.timer = this.timers.setTimeout(function () {
      self.timer = null;
      if (self.mode === 'pending') self.setMode('fallback', null);
    }, this.readyTimeoutMs);
    doc.body.appendChild(iframe);
  };

  /**
   * Called on the bridge's ready message and on the iframe's load event
   * (whichever comes first; in old IE the message may be dispatched after load).
   */
  BridgeTransport.prototype.decide = function () {
    if (this.mode !== 'pending') return;
    var bridge = this.tryDocumentDomain();
    if (bridge) this.setMode('document.domain', bridge);
    else if (this.readySeen) this.setMode('postMessage', null);
    // else: wait for the ready message or the timeout.
  };

  /** The bridge's CometBridge object when document.domain made it reachable, else null. */
  BridgeTransport.prototype.tryDocumentDomain = function () {
    try {
      // Both sides must assign it, even to the current value: the assignment
      // itself is what makes the origin comparison use the domain (and drop the port).
      this.window.document.domain = this.baseDomain;
    } catch (e) {
      return null; // refused: not a suffix of our host, or a sandboxed document
    }
    try {
      var bridge = this.iframe.contentWindow.CometBridge;
      if (bridge && typeof bridge.request === 'function') return bridge;
    } catch (e) {
      // SecurityError: still cross-origin (origin-keyed agent cluster, or the bridge did not set it).
    }
    return null;
  };

  BridgeTransport.prototype.setMode = function (mode, bridge) {
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
    }
    this.mode = mode;
    this.bridge = bridge;
    if (mode === 'fallback') this.close();
    var queued = this.queue;
    this.queue = [];
    for (var i = 0; i < queued.length; i++) this.dispatch(queued[i]);
    this.onMode(mode);
  };

  BridgeTransport.prototype.dispatch = function (call) {
    if (call.aborted) return;
    if (this.mode === 'document.domain') {
      try {
        call.inner = this.bridge.request(call.method, call.path, call.bodyText, call.callback);
      } catch (e) {
        // The bridge document went away (navigated, crashed): report a network
        // failure so callers retry with backoff.
        this.timers.setTimeout(function () {
          call.callback(util.error('COMET_ERR_NETWORK', 'bridge unreachable: ' + e.message), 0, '', {});
        }, 0);
      }
    } else if (this.mode === 'postMessage') {
      call.inner = this.postRequest(call);
    } else {
      call.inner = this.fallback.request(call.method, call.path, call.bodyText, call.callback);
    }
  };

  BridgeTransport.prototype.postRequest = function (call) {
    var self = this;
    var id = this.nextId++;
    this.calls[id] = call.callback;
    this.send({ cometBridge: MARKER, id: id, method: call.method, path: call.path, body: call.bodyText });
    return {
      abort: function () {
        if (!util.hasOwn(self.calls, id)) return;
        delete self.calls[id];
        self.send({ cometBridge: MARKER, id: id, abort: true });
      }
    };
  };

  /** Always names the bridge's origin as target: if the iframe was navigated elsewhere, the browser drops the message. */
  BridgeTransport.prototype.send = function (message) {
    if (!this.iframe || !this.iframe.contentWindow) return;
    this.iframe.contentWindow.postMessage(util.stringify(message), this.origin);
  };

  BridgeTransport.prototype.onMessage = function (event) {
    // Only our bridge may answer: exact origin, and the iframe's own window.
    if (event.origin !== this.origin) return;
    if (this.iframe && event.source && event.source !== this.iframe.contentWindow) return;
    var parsed = util.parseJson(event.data);
    var message = parsed.value;
    if (!parsed.ok || !message || message.cometBridge !== MARKER) return;

    if (message.ready === true) {
      this.readySeen = true;
      this.decide();
      return;
    }
    if (typeof message.id !== 'number' || !util.hasOwn(this.calls, message.id)) return;
    var callback = this.calls[message.id];
    delete this.calls[message.id];
    if (message.error) {
      callback(util.error(String(message.error), 'bridge ' + this.origin + ': ' + message.error, 0), 0, '', {});
    } else {
      callback(null, message.status, message.body, message.headers || {});
    }
  };

  /** Removes the iframe and listeners. In-flight postMessage calls are dropped unanswered (callers abort first). */
  BridgeTransport.prototype.close = function () {
    this.unlisten();
    this.unlisten = util.noop;
    this.calls = {};
    if (this.iframe && this.iframe.parentNode) this.iframe.parentNode.removeChild(this.iframe);
    this.iframe = null;
  };

  CometChat.BridgeTransport = BridgeTransport;
}(this));
