/*
 * bridge.js: the script of public/bridge.html, the connection bridge on a shard host.
 *
 * The chat page loads /bridge.html from c1.<base domain>, c2.<base domain>, ... in
 * hidden iframes and sends its long-polls through them, because browsers cap
 * concurrent connections per host name. This page does same-origin XHR for its
 * parent and nothing else. Self-contained (no other script): it must stay small
 * and must not depend on the chat page's code version.
 *
 * Two ways in (the page picks; see comet-bridge-client.js):
 *  - document.domain: we set it to the base domain; a parent that did the same can
 *    call window.CometBridge.request(...) directly. Only documents that can set
 *    document.domain to the base domain reach it, i.e. pages on the base domain or
 *    its subdomains: run this only on a domain whose subdomains you all trust.
 *  - postMessage: JSON strings, accepted only from our parent window and only when
 *    its origin is the one named in `?parent=` and that origin's host is the base
 *    domain or a subdomain of it; answers are posted to that origin only.
 * Either way, requests go only to our own origin and only under /api/.
 */
(function (window, document) {
  'use strict';

  var MARKER = 1;
  var BODY_MAX_CHARS = 65536;
  /** Response headers the client reads; nothing else is passed on. */
  var PASSED_HEADERS = ['content-type', 'comet-connection-id', 'comet-resync'];

  var location = window.location;
  var baseDomain = chooseBaseDomain(queryParam('base'), location.hostname.toLowerCase());
  var parentOrigin = checkParentOrigin(queryParam('parent'));

  function queryParam(name) {
    var pairs = location.search.replace(/^\?/, '').split('&');
    for (var i = 0; i < pairs.length; i++) {
      var eq = pairs[i].indexOf('=');
      if (eq !== -1 && pairs[i].slice(0, eq) === name) {
        try {
          return decodeURIComponent(pairs[i].slice(eq + 1));
        } catch (e) {
          return null;
        }
      }
    }
    return null;
  }

  function hostInDomain(host, domain) {
    if (host === domain) return true;
    var suffix = '.' + domain;
    return host.length > suffix.length && host.slice(host.length - suffix.length) === suffix;
  }

  /**
   * `?base=` when it is our own host or a parent domain of it (document.domain
   * accepts nothing else); otherwise our host minus its first label
   * (c1.chat.test -> chat.test). IP addresses have no parent domain.
   */
  function chooseBaseDomain(requested, host) {
    if (/^[0-9.]+$/.test(host) || host.indexOf(':') !== -1) return null;
    if (requested) {
      requested = requested.toLowerCase();
      if (requested.indexOf('.') !== -1 && hostInDomain(host, requested)) return requested;
      return null;
    }
    var labels = host.split('.');
    return labels.length > 2 ? labels.slice(1).join('.') : host;
  }

  /** The parent's origin if it is on our scheme and within the base domain, else null (serve nobody). */
  function checkParentOrigin(origin) {
    if (!origin || !baseDomain) return null;
    var match = /^(https?:)\/\/([a-z0-9.-]+)(:[0-9]{1,5})?$/i.exec(origin);
    if (!match || match[1] !== location.protocol) return null;
    return hostInDomain(match[2].toLowerCase(), baseDomain) ? origin : null;
  }

  /** Only our own API: a relative path under /api/, no dot segments, no backslashes, no odd characters. */
  function allowed(method, path, body) {
    if (method !== 'GET' && method !== 'POST') return false;
    if (typeof path !== 'string' || !/^\/api\/[A-Za-z0-9\-._~%!$&'()*+,;=:@\/?]*$/.test(path)) return false;
    if (/(^|\/)\.\.?(\/|\?|$)/.test(path)) return false;
    return body === null || body === undefined || (typeof body === 'string' && body.length <= BODY_MAX_CHARS);
  }

  function createXhr() {
    if (window.XMLHttpRequest) return new window.XMLHttpRequest();
    return new window.ActiveXObject('Msxml2.XMLHTTP');
  }

  function pickHeaders(xhr) {
    var headers = {};
    for (var i = 0; i < PASSED_HEADERS.length; i++) {
      var value = xhr.getResponseHeader(PASSED_HEADERS[i]);
      if (value !== null && value !== undefined && value !== '') headers[PASSED_HEADERS[i]] = value;
    }
    return headers;
  }

  function noop() {}

  /**
   * The transport interface (comet-transport.js): callback(err, status, bodyText, headers)
   * once, never after abort(). `err` is {code, message} when there was no HTTP answer.
   */
  function request(method, path, body, callback) {
    var finished = false;
    if (!allowed(method, path, body)) {
      window.setTimeout(function () {
        callback({ code: 'COMET_ERR_BRIDGE_REFUSED', message: 'the bridge only forwards GET/POST under /api/' }, 0, '', {});
      }, 0);
      return { abort: noop };
    }
    var xhr = createXhr();
    xhr.open(method, path, true);
    if (body !== null && body !== undefined) xhr.setRequestHeader('Content-Type', 'application/json');
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4 || finished) return;
      finished = true;
      xhr.onreadystatechange = noop;
      var status = 0;
      try {
        status = xhr.status;
      } catch (e) { /* old IE after a network error */ }
      if (status === 0 || status >= 12000) {
        callback({ code: 'COMET_ERR_NETWORK', message: 'no answer from ' + path }, 0, '', {});
      } else {
        callback(null, status === 1223 ? 204 : status, xhr.responseText, pickHeaders(xhr));
      }
    };
    xhr.send(body === undefined ? null : body);
    return {
      abort: function () {
        if (finished) return;
        finished = true;
        xhr.onreadystatechange = noop;
        try {
          xhr.abort();
        } catch (e) { /* already done */ }
      }
    };
  }

  if (!parentOrigin || window.parent === window) return;

  // The document.domain path. Chromium ignores this assignment (with a console
  // warning) in an origin-keyed agent cluster; the page then uses postMessage.
  try {
    document.domain = baseDomain;
  } catch (e) { /* refused: postMessage only */ }
  window.CometBridge = { version: 1, baseDomain: baseDomain, request: request };

  if (!window.postMessage || !window.JSON) return;

  var inFlight = {};

  function reply(message) {
    window.parent.postMessage(window.JSON.stringify(message), parentOrigin);
  }

  function onMessage(event) {
    event = event || window.event;
    if (event.origin !== parentOrigin || (event.source && event.source !== window.parent)) return;
    if (typeof event.data !== 'string') return;
    var message;
    try {
      message = window.JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (!message || message.cometBridge !== MARKER || typeof message.id !== 'number') return;
    var id = message.id;
    if (message.abort === true) {
      if (inFlight[id]) inFlight[id].abort();
      delete inFlight[id];
      return;
    }
    if (inFlight[id]) return; // ids are never reused by a well-behaved parent
    inFlight[id] = request(message.method, message.path, message.body, function (err, status, text, headers) {
      delete inFlight[id];
      if (err) reply({ cometBridge: MARKER, id: id, error: err.code });
      else reply({ cometBridge: MARKER, id: id, status: status, body: text, headers: headers });
    });
  }

  if (window.addEventListener) window.addEventListener('message', onMessage, false);
  else window.attachEvent('onmessage', onMessage);

  reply({ cometBridge: MARKER, ready: true });
}(window, document));
