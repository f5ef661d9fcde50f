/*
 * chat-limits.js: the server's input limits, counted as the user types.
 *
 * The app refuses a message, nick or room name over its limit (413/400, never
 * cut: docs/chat-api.md "Rules") and announces the limits in GET /api/config.
 * The page shows a counter next to each field and blocks sending past the
 * limit, so nothing is refused after the fact or shortened without a word.
 * No `maxlength` on the fields: the browser would cut a long paste silently.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;
  var dom = CometChat.dom;

  /** The app's defaults, for an app too old to announce its limits. */
  var DEFAULTS = { messageMaxChars: 2000, nickMaxChars: 32, roomNameMaxChars: 32 };

  var limits = CometChat.limits = {};

  /** The announced limits (config.limits), each a positive integer, else the default. */
  limits.from = function (announced) {
    var out = {};
    for (var key in DEFAULTS) {
      if (!util.hasOwn(DEFAULTS, key)) continue;
      var value = announced && announced[key];
      out[key] = typeof value === 'number' && value >= 1 ? Math.floor(value) : DEFAULTS[key];
    }
    return out;
  };

  /** Trimmed, as the server trims before counting. */
  limits.trim = function (text) {
    return String(text).replace(/^\s+|\s+$/g, '');
  };

  /**
   * Characters as the server counts them: code points, so an emoji (a UTF-16
   * surrogate pair) is one. ES5 strings count UTF-16 units, hence the loop.
   */
  limits.count = function (text) {
    var n = 0;
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        var d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) i++;
      }
      n++;
    }
    return n;
  };

  /**
   * A counter for one field: "12 / 2000", marked `data-over` past the limit.
   * `max` is read through a function, since the limits arrive with the config.
   * onChange(over) after each update.
   */
  function Counter(field, node, max, onChange) {
    var self = this;
    this.field = field;
    this.node = node;
    this.max = max;
    this.onChange = onChange || util.noop;
    var update = function () { self.update(); };
    util.listen(field, 'input', update);
    // 'input' is missing in IE8; keyup and paste catch most edits there.
    util.listen(field, 'keyup', update);
    util.listen(field, 'paste', function () { window.setTimeout(update, 0); });
    this.update();
  }

  Counter.prototype.length = function () {
    return limits.count(limits.trim(this.field.value));
  };

  Counter.prototype.over = function () {
    return this.length() > this.max();
  };

  Counter.prototype.update = function () {
    var n = this.length();
    var max = this.max();
    var over = n > max;
    dom.setText(this.node, n + ' / ' + max);
    this.node.setAttribute('data-over', over ? 'true' : 'false');
    // Near the limit the counter is worth a glance; far from it, it stays quiet.
    dom.toggleClass(this.node, 'is-near', n >= max * 0.9);
    this.onChange(over);
    return over;
  };

  /** "This message is 2001 characters; the limit is 2000." */
  Counter.prototype.overText = function (what) {
    return 'This ' + what + ' is ' + this.length() + ' characters; the limit is ' + this.max() + '. Shorten it to send.';
  };

  limits.Counter = Counter;
}(this));
