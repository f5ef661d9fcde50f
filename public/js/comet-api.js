/*
 * comet-api.js: the chat app's HTTP API (docs/chat-api.md) over one transport.
 *
 * Every method takes a node-style callback(err, value). Errors carry `code`
 * and `status`: the app's own `{code, message}` (APP_ERR_*), the proxy's
 * (PROXY_ERR_*), or the client's (COMET_ERR_NETWORK when there was no answer,
 * COMET_ERR_BAD_RESPONSE for a body that is not the expected JSON). A 429 or
 * 503 with `Retry-After` also carries `retryAfterMs`: retries wait at least that.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;

  function Api(transport) {
    this.transport = transport;
    /**
     * Sent as `t=` on polls without a connection ID (the app ignores it): tabs that poll for
     * themselves and open together would otherwise send identical first GETs, and Chromium's
     * HTTP cache lets only one of identical GETs out at a time (docs/protocol.md §10.1).
     * Polls with a `cid` are distinct already and keep the two parameters a re-poll lease needs (§13.3).
     */
    this.pollTag = (new Date().getTime()).toString(36) + Math.random().toString(36).slice(2, 8);
  }

  /** Longest wait taken from a Retry-After, ms: a broken header must not park a client for a day. */
  var RETRY_AFTER_MAX_MS = 10 * 60 * 1000;

  /**
   * `Retry-After` (RFC 9110 §10.2.3: seconds, or an HTTP date) in ms from now, or null
   * when absent or unreadable.
   */
  Api.retryAfterMs = function (value, now) {
    if (value === undefined || value === null || value === '') return null;
    var ms;
    if (/^\s*\d+\s*$/.test(value)) {
      ms = parseInt(value, 10) * 1000;
    } else {
      var at = Date.parse(value);
      if (isNaN(at)) return null;
      ms = Math.max(0, at - now);
    }
    return Math.min(ms, RETRY_AFTER_MAX_MS);
  };

  /**
   * One call. `bodyValue` is JSON-encoded when given; `requestHeaders` optional.
   * callback(err, body, status, headers); returns the transport's handle (abort()).
   */
  Api.prototype.call = function (method, path, bodyValue, callback, requestHeaders) {
    var bodyText = bodyValue === undefined || bodyValue === null ? null : util.stringify(bodyValue);
    return this.transport.request(method, path, bodyText, function (err, status, text, headers) {
      if (err) {
        callback(err, null, 0, {});
        return;
      }
      var parsed = util.parseJson(text);
      if (status >= 200 && status < 300) {
        if (!parsed.ok || parsed.value === null || typeof parsed.value !== 'object') {
          callback(util.error('COMET_ERR_BAD_RESPONSE', method + ' ' + path + ': the answer is not JSON', status), null, status, headers);
        } else {
          callback(null, parsed.value, status, headers);
        }
        return;
      }
      var body = parsed.ok && parsed.value ? parsed.value : {};
      var code = typeof body.code === 'string' ? body.code : 'COMET_ERR_HTTP_' + status;
      var message = typeof body.message === 'string' ? body.message : method + ' ' + path + ' answered ' + status;
      var error = util.error(code, message, status);
      if (status === 429 || status === 503) {
        var wait = Api.retryAfterMs(headers && headers['retry-after'], util.now());
        if (wait !== null) error.retryAfterMs = wait;
      }
      callback(error, null, status, headers);
    }, requestHeaders);
  };

  function roomPath(room, rest) {
    return '/api/rooms/' + encodeURIComponent(room) + (rest || '');
  }

  /** Picks one field of the answer (or passes the error on). */
  function field(name, callback) {
    return function (err, body) {
      if (err) callback(err);
      else callback(null, body[name]);
    };
  }

  /** `{baseDomain, shards}`; see CometChat.Client for how a missing config is read. */
  Api.prototype.config = function (callback) {
    return this.call('GET', '/api/config', null, function (err, body) { callback(err, body); });
  };

  /** The signed-in user, or null (not an error) when there is no session. */
  Api.prototype.session = function (callback) {
    return this.call('GET', '/api/session', null, function (err, body) {
      if (util.isSessionGone(err)) callback(null, null);
      else if (err) callback(err);
      else callback(null, body.user);
    });
  };

  Api.prototype.login = function (nick, callback) {
    return this.call('POST', '/api/session', { nick: nick }, field('user', callback));
  };

  Api.prototype.rooms = function (callback) {
    return this.call('GET', '/api/rooms', null, field('rooms', callback));
  };

  Api.prototype.createRoom = function (name, callback) {
    return this.call('POST', '/api/rooms', { name: name }, field('room', callback));
  };

  /** callback(err, {room, cursor}) */
  Api.prototype.join = function (room, callback) {
    return this.call('POST', roomPath(room, '/join'), null, function (err, body) { callback(err, body); });
  };

  Api.prototype.leave = function (room, callback) {
    return this.call('POST', roomPath(room, '/leave'), null, field('room', callback));
  };

  Api.prototype.members = function (room, callback) {
    return this.call('GET', roomPath(room, '/members'), null, field('members', callback));
  };

  /** callback(err, {events, cursor, hasMore}); `beforeId` null for the newest page. */
  Api.prototype.history = function (room, beforeId, limit, callback) {
    var query = '?limit=' + limit + (beforeId === null || beforeId === undefined ? '' : '&before=' + beforeId);
    return this.call('GET', roomPath(room, '/messages' + query), null, function (err, body) { callback(err, body); });
  };

  /**
   * `idempotencyKey` (optional): the same key for every attempt at one message, so a resend
   * whose first attempt was committed is answered with that message, not posted twice.
   */
  Api.prototype.post = function (room, text, idempotencyKey, callback) {
    var headers = idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : null;
    return this.call('POST', roomPath(room, '/messages'), { text: text }, field('event', callback), headers);
  };

  /**
   * The long-poll: `cursors` is [{room, cursor}], `cid` the loop's connection ID or null.
   * callback(err, body, status, headers) with the raw answer: the poller needs headers.
   */
  Api.prototype.poll = function (cursors, cid, callback) {
    var parts = [];
    for (var i = 0; i < cursors.length; i++) parts.push(encodeURIComponent(cursors[i].room) + ':' + cursors[i].cursor);
    var path = '/api/poll?rooms=' + parts.join(',') + (cid ? '&cid=' + encodeURIComponent(cid) : '&t=' + this.pollTag);
    return this.call('GET', path, null, callback);
  };

  CometChat.Api = Api;
}(this));
