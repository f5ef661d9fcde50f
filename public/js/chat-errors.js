/*
 * chat-errors.js: error codes in words people use. The API's messages are for
 * developers ("no answer from /api/rooms/general/messages"); the page shows
 * what happened and what happens next ("Could not send: you are offline, will
 * retry"). Unknown codes fall back to a sentence built from the HTTP status,
 * never to the raw message.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;

  var OFFLINE = 'you are offline or the server cannot be reached';
  var BUSY = 'the server is busy';
  var RESTARTING = 'the server is restarting';

  /** What went wrong, as the end of a sentence. */
  var REASONS = {
    COMET_ERR_NETWORK: OFFLINE,
    COMET_ERR_POLL_TIMEOUT: 'the server stopped answering',
    COMET_ERR_BAD_RESPONSE: 'the server sent an answer this page cannot read',
    APP_ERR_NO_SESSION: 'you are signed out',
    APP_ERR_SESSION_EXPIRED: 'your session has expired',
    APP_ERR_SESSION_ENDED: 'you signed out (perhaps in another tab)',
    APP_ERR_INVALID_NICK: 'a nickname is 1 to 32 letters, digits, spaces, "_", "." or "-"',
    APP_ERR_INVALID_ROOM_NAME: 'a room name is 1 to 32 of a-z, 0-9, "_" or "-", starting with a letter or digit',
    APP_ERR_ROOM_EXISTS: 'that room already exists',
    APP_ERR_ROOM_NOT_FOUND: 'that room no longer exists',
    APP_ERR_NOT_MEMBER: 'you are no longer in that room',
    APP_ERR_EMPTY_MESSAGE: 'the message is empty',
    APP_ERR_MESSAGE_TOO_LONG: 'the message is too long',
    APP_ERR_INVALID_MESSAGE: 'the message contains control characters that cannot be sent',
    APP_ERR_NICK_TAKEN: 'that nickname is in use; please choose another',
    APP_ERR_TOO_MANY_SUBSCRIPTIONS: 'you are in as many rooms as one connection can follow',
    APP_ERR_RATE_LIMITED: 'you are sending faster than the server allows',
    APP_ERR_TOO_MANY_CONNECTIONS: 'too many tabs or devices of yours are connected',
    APP_ERR_DB_BUSY: BUSY,
    APP_ERR_CSRF: 'the request came from another site and was refused',
    APP_ERR_BODY_TOO_LARGE: 'the message is too large',
    APP_ERR_IDEMPOTENCY_KEY_REUSED: 'this page sent two different messages under one key (a bug: please reload)',
    PROXY_ERR_SHUTTING_DOWN: RESTARTING,
    PROXY_ERR_UPSTREAM_UNAVAILABLE: RESTARTING,
    PROXY_ERR_UPSTREAM_TIMEOUT: 'the server took too long to answer',
    PROXY_ERR_TOO_MANY_PARKED: 'the server is full',
    PROXY_ERR_TOO_MANY_QUEUES: 'the server is full',
    PROXY_ERR_BUS_UNAVAILABLE: BUSY,
    PROXY_ERR_TOO_MANY_PIPELINED: BUSY,
    PROXY_ERR_MISDIRECTED: 'this address is not the chat\'s (open the address the server prints)'
  };

  /**
   * Codes whose API message is written for the person at the keyboard (it names their input): shown as is,
   * since it says more than any fixed sentence here could ('"ADA" is already in use; please choose another').
   */
  var HUMAN_MESSAGES = {
    APP_ERR_NICK_TAKEN: true
  };

  var errors = CometChat.errors = {};

  /**
   * Worth trying again as it is: no answer, a timeout, a 5xx, or a 429/408 (the
   * request was fine, the moment was not). Every other 4xx will be refused again.
   */
  errors.retryable = function (err) {
    if (!err) return false;
    var status = err.status || 0;
    if (err.code === 'COMET_ERR_NETWORK' || err.code === 'COMET_ERR_POLL_TIMEOUT' || status === 0) return true;
    return status >= 500 || status === 429 || status === 408;
  };

  errors.reason = function (err) {
    if (!err) return 'something went wrong';
    if (util.hasOwn(HUMAN_MESSAGES, err.code) && typeof err.message === 'string' && err.message) return err.message;
    if (util.hasOwn(REASONS, err.code)) return REASONS[err.code];
    if (err.status >= 500) return 'the server had a problem (' + err.status + ')';
    if (err.status >= 400) return 'the server refused it (' + err.status + ')';
    return 'something went wrong';
  };

  /** Whole seconds, for "retrying in 5 s". */
  function seconds(ms) {
    return Math.max(1, Math.ceil(ms / 1000)) + ' s';
  }

  /**
   * "Could not <action>: <reason>." plus what happens next: `retryInMs` a number when
   * a retry is scheduled, true when one happens on reconnect, absent when none.
   */
  errors.describe = function (action, err, retryInMs) {
    var text = 'Could not ' + action + ': ' + errors.reason(err);
    // From half a second, in whole seconds rounded up: a 1 s Retry-After read a millisecond after it was scheduled
    // (999 ms left) is still "retrying in 1 s", not "will retry".
    if (typeof retryInMs === 'number' && retryInMs >= 500) text += ', retrying in ' + seconds(retryInMs);
    else if (retryInMs === true || typeof retryInMs === 'number') text += ', will retry';
    return text + '.';
  };
}(this));
