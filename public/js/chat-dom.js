/*
 * chat-dom.js: the few DOM helpers the chat UI needs, ES5 and IE8-safe.
 *
 * User data (nicks, messages, room names, error messages) only ever reaches
 * the page as text nodes: `el()` turns every string child into a text node,
 * and nothing here touches innerHTML.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var dom = CometChat.dom = {};

  /**
   * el(doc, 'li', {className: 'x', 'data-id': 7, title: '...'}, [child, 'text', ...])
   * Attributes go through setAttribute (className is a property: IE7 ignores
   * setAttribute('class')). Children: nodes, or strings made into text nodes.
   */
  dom.el = function (doc, tag, attrs, children) {
    var node = doc.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, key) || attrs[key] === null || attrs[key] === undefined) continue;
        if (key === 'className') node.className = attrs[key];
        else node.setAttribute(key, String(attrs[key]));
      }
    }
    if (children) {
      for (var i = 0; i < children.length; i++) {
        var child = children[i];
        if (child === null || child === undefined) continue;
        node.appendChild(typeof child === 'string' ? doc.createTextNode(child) : child);
      }
    }
    return node;
  };

  dom.clear = function (node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  };

  /** Replaces a node's content with `text`, as text. */
  dom.setText = function (node, text) {
    dom.clear(node);
    node.appendChild(node.ownerDocument.createTextNode(text === null || text === undefined ? '' : String(text)));
  };

  // classList is missing in IE9 and older; className string operations work everywhere.
  dom.hasClass = function (node, name) {
    return (' ' + node.className + ' ').indexOf(' ' + name + ' ') !== -1;
  };

  dom.addClass = function (node, name) {
    if (!dom.hasClass(node, name)) node.className = node.className ? node.className + ' ' + name : name;
  };

  dom.removeClass = function (node, name) {
    node.className = (' ' + node.className + ' ').replace(' ' + name + ' ', ' ').replace(/^\s+|\s+$/g, '');
  };

  dom.toggleClass = function (node, name, on) {
    if (on) dom.addClass(node, name);
    else dom.removeClass(node, name);
  };

  dom.show = function (node, visible) {
    dom.toggleClass(node, 'is-hidden', !visible);
  };

  /** The nearest ancestor-or-self with attribute `name` (event delegation), or null. */
  dom.closestWithAttr = function (node, name, stopAt) {
    while (node && node !== stopAt && node.nodeType === 1) {
      if (node.getAttribute(name) !== null) return node;
      node = node.parentNode;
    }
    return null;
  };

  dom.preventDefault = function (event) {
    if (event.preventDefault) event.preventDefault();
    else event.returnValue = false;
  };

  dom.target = function (event) {
    return event.target || event.srcElement;
  };

  /** ISO 8601 timestamps: Date.parse handles them from ES5 on; IE8 needs the fields read by hand. */
  dom.parseTime = function (iso) {
    var ms = Date.parse(iso);
    if (!isNaN(ms)) return new Date(ms);
    var m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$/.exec(String(iso));
    if (!m) return null;
    return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], m[7] ? +m[7].slice(0, 3) : 0));
  };

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  /** `14:05` in local time, or '' for an unreadable timestamp. */
  dom.formatTime = function (iso) {
    var d = dom.parseTime(iso);
    return d ? pad(d.getHours()) + ':' + pad(d.getMinutes()) : '';
  };

  /** The full local date and time, for a tooltip. */
  dom.formatDateTime = function (iso) {
    var d = dom.parseTime(iso);
    return d ? d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) : '';
  };

  var AVATAR_COLORS = ['#5b6ee1', '#d9534f', '#2f9e6f', '#c77c1e', '#8e5bd6', '#1f8fb3', '#c2417d', '#6b7d2a'];

  /** A stable color per nick, so people are recognisable at a glance. */
  dom.colorFor = function (nick) {
    var hash = 0;
    for (var i = 0; i < nick.length; i++) hash = (hash * 31 + nick.charCodeAt(i)) % 1000003;
    return AVATAR_COLORS[hash % AVATAR_COLORS.length];
  };

  dom.avatar = function (doc, nick) {
    var node = dom.el(doc, 'span', { className: 'avatar', 'aria-hidden': 'true' }, [nick.charAt(0).toUpperCase()]);
    node.style.backgroundColor = dom.colorFor(nick);
    return node;
  };
}(this));
