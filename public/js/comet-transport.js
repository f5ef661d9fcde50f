/*
 * comet-transport.js: the transport interface and its direct implementation.
 *
 * A transport runs one HTTP request and answers once:
 *
 *   handle = transport.request(method, path, bodyText, function (err, status, bodyText, headers) {}, requestHeaders)
 *   handle.abort()   // the callback is then never called
 *
 * `path` is absolute on the transport's host (`/api/...`), `bodyText` a JSON
 * string or null, `headers` an object with lower-case names. `err` is set only
 * when there was no HTTP answer (code COMET_ERR_NETWORK); any status, 5xx
 * included, is an answer. `requestHeaders` (optional, {name: value}) are extra
 * request headers, e.g. a post's `Idempotency-Key`; a transport that cannot send
 * them (the shard bridge, which only polls) ignores them. Implementations: XhrTransport here (same origin),
 * BridgeTransport in comet-bridge-client.js (another host, through an iframe).
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;

  /**
   * One XHR to `url`, answered through the transport callback. public/js/bridge.js
   * has its own copy on purpose: the bridge page must stay self-contained.
   */
  function xhrRequest(method, url, bodyText, callback, requestHeaders) {
    var xhr = util.createXhr();
    var finished = false;

    function finish(err, status, text, headers) {
      if (finished) return;
      finished = true;
      // IE throws when assigning null to onreadystatechange, hence a no-op.
      xhr.onreadystatechange = util.noop;
      callback(err, status, text, headers);
    }

    xhr.open(method, url, true);
    if (bodyText !== null && bodyText !== undefined) xhr.setRequestHeader('Content-Type', 'application/json');
    if (requestHeaders) {
      for (var name in requestHeaders) {
        if (util.hasOwn(requestHeaders, name)) xhr.setRequestHeader(name, requestHeaders[name]);
      }
    }
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4 || finished) return;
      var status = 0;
      try {
        status = xhr.status;
      } catch (e) { /* old IE throws reading status after a network error */ }
      // Status 0: no HTTP answer (refused, reset, DNS). IE9 reports 1223 for 204 and
      // 12xxx WinInet codes for network failures.
      if (status === 0 || status >= 12000) {
        finish(util.error('COMET_ERR_NETWORK', 'no answer from ' + url), 0, '', {});
        return;
      }
      if (status === 1223) status = 204;
      finish(null, status, xhr.responseText, util.parseHeaders(xhr.getAllResponseHeaders()));
    };
    try {
      xhr.send(bodyText === undefined ? null : bodyText);
    } catch (e) {
      // Some browsers throw synchronously for a refused connection; answer
      // asynchronously like every other failure.
      window.setTimeout(function () {
        finish(util.error('COMET_ERR_NETWORK', 'request to ' + url + ' failed: ' + e.message), 0, '', {});
      }, 0);
    }

    return {
      abort: function () {
        if (finished) return;
        finished = true;
        xhr.onreadystatechange = util.noop;
        try {
          xhr.abort();
        } catch (e) { /* already done */ }
      }
    };
  }

  /** Requests to the page's own origin (`baseUrl` '' ) or another same-origin prefix. */
  function XhrTransport(baseUrl) {
    this.baseUrl = baseUrl || '';
  }

  XhrTransport.prototype.kind = 'xhr';

  XhrTransport.prototype.request = function (method, path, bodyText, callback, requestHeaders) {
    return xhrRequest(method, this.baseUrl + path, bodyText, callback, requestHeaders);
  };

  CometChat.xhrRequest = xhrRequest;
  CometChat.XhrTransport = XhrTransport;
}(this));
