/*
 * comet-stream.js: the rooms' events over one streaming response
 * (`GET /api/stream`, docs/protocol.md §10.2), with long-polling as the way to
 * find out why a stream would not open.
 *
 * A Streamer has the Poller's interface (add, remove, has, pause, resume, stop,
 * eachLoop, snapshot; the same handler), so the Client and the tab group run
 * either. It keeps one loop for every joined room, like the multiplexed poll:
 *
 *  - it opens `/api/stream?rooms=a:1,b:2&cid=ID` with the client's cursors. The
 *    first frame (`hello`) carries the connection ID, then every event past the
 *    cursors, then each new event as it is published (one SSE frame each);
 *  - a stream that ends after it opened (the proxy restarting, a session streams
 *    close, the recycle timer) is opened again from the cursors as they are now,
 *    so the client never depends on `Last-Event-ID`, and a stream that fails
 *    before its `hello` is followed by one long-poll, whose answer or error says
 *    what to do (401: session lost; 403/404: a room was taken away; 5xx or no
 *    answer: back off), exactly as the Poller does; then it streams again;
 *  - a `resync` frame (the proxy ended the stream for a gap or a slow reader)
 *    reloads the rooms, then streams from the reloaded cursors;
 *  - after three streams in a row failed to open while the long-poll worked
 *    (something between us and the server breaks streaming), it stays with
 *    long-polling for the rest of the page's life;
 *  - an open stream is replaced every `recycleMs` (default 50 s): like a re-poll,
 *    the new one refreshes presence and checks membership and the session.
 *
 * Events can repeat across reconnects; the Client drops those at or below its
 * cursor, so each is shown once.
 *
 * Kinds (how the stream is read):
 *  - 'sse': EventSource (every current browser);
 *  - 'xhr-stream': an XHR whose responseText grows (readyState 3), the same SSE
 *    bytes parsed here (`format=xhr`: text/plain after 2 KiB of padding); for
 *    browsers without EventSource. Recycled after `byteBudget` characters, since
 *    the XHR keeps the whole text.
 *  - 'iframe': the forever iframe (`format=iframe`): a hidden iframe loads an
 *    HTML document that never ends; after each frame a script calls
 *    `parent.CometChat._s(name, text)` with the frame's text, which is parsed
 *    here like SSE. The oldest way; the document removes what it delivered, and
 *    the iframe is replaced after `byteBudget` characters all the same.
 */
(function (window) {
  'use strict';

  var CometChat = window.CometChat;
  var util = CometChat.util;

  var KINDS = ['sse', 'xhr-stream', 'iframe'];
  /** The `format=` each kind asks for. */
  var FORMATS = { 'sse': '', 'xhr-stream': '&format=xhr', 'iframe': '&format=iframe' };
  var MULTIPLEX_KEY = '*';
  /** Streams that fail to open (while the long-poll answers) before the loop stays with long-polling. */
  var MAX_FAILED_OPENS = 3;
  /** A stream that lived at least this long is reopened at once when it ends; a shorter one backs off. */
  var HEALTHY_STREAM_MS = 5000;

  /**
   * options:
   *   kind             one of KINDS
   *   api              the Api of the page's host (the long-poll that diagnoses a failed open)
   *   baseUrl          prefix of the stream's URL, default '' (the page's origin)
   *   cursorOf(room)   the room's cursor
   *   handler          as the Poller's
   *   backoffBaseMs, backoffCapMs, pollTimeoutMs   as the Poller's
   *   recycleMs        an open stream is replaced after this long, default 50000
   *   byteBudget       'xhr-stream', 'iframe': characters read before the request is replaced, default 1048576
   *   openTimeoutMs    a stream that has not sent its hello by then counts as failed to open, default 20000
   *   window, timers, random   injectable
   */
  function Streamer(options) {
    if (util.indexOf(KINDS, options.kind) === -1) {
      throw util.error('COMET_ERR_BAD_OPTION', 'kind must be one of ' + KINDS.join(', '));
    }
    this.kind = options.kind;
    this.api = options.api;
    this.baseUrl = options.baseUrl || '';
    this.cursorOf = options.cursorOf;
    this.handler = options.handler;
    this.backoffBaseMs = options.backoffBaseMs || 250;
    this.backoffCapMs = options.backoffCapMs || 10000;
    this.pollTimeoutMs = options.pollTimeoutMs || 75000;
    this.recycleMs = options.recycleMs || 50000;
    this.byteBudget = options.byteBudget || 1048576;
    this.openTimeoutMs = options.openTimeoutMs || 20000;
    this.window = options.window || window;
    this.timers = options.timers || {
      setTimeout: function (fn, ms) { return window.setTimeout(fn, ms); },
      clearTimeout: function (id) { window.clearTimeout(id); }
    };
    this.random = options.random || Math.random;
    this.loop = null;
  }

  Streamer.KINDS = KINDS;

  /** Whether this browser can read a stream of `kind`. */
  Streamer.supports = function (kind, win) {
    if (kind === 'sse') return typeof win.EventSource === 'function' || typeof win.EventSource === 'object';
    if (kind === 'xhr-stream') return !!win.XMLHttpRequest;
    if (kind === 'iframe') return !!(win.document && win.document.createElement);
    return false;
  };

  Streamer.prototype.multiplexed = function () {
    return true;
  };

  Streamer.prototype.add = function (rooms) {
    var fresh = [];
    for (var i = 0; i < rooms.length; i++) {
      if (!this.has(rooms[i]) && util.indexOf(fresh, rooms[i]) === -1) fresh.push(rooms[i]);
    }
    if (fresh.length === 0) return;
    if (this.loop) {
      this.loop.rooms = this.loop.rooms.concat(fresh);
      this.loop.roomsChanged();
      return;
    }
    this.loop = new StreamLoop(this, fresh);
    this.loop.start();
  };

  Streamer.prototype.remove = function (rooms) {
    var loop = this.loop;
    if (!loop) return;
    var kept = [];
    for (var i = 0; i < loop.rooms.length; i++) {
      if (util.indexOf(rooms, loop.rooms[i]) === -1) kept.push(loop.rooms[i]);
    }
    if (kept.length === loop.rooms.length) return;
    loop.rooms = kept;
    if (kept.length === 0) {
      loop.stop();
      this.loop = null;
    } else {
      loop.roomsChanged();
    }
  };

  Streamer.prototype.has = function (room) {
    return !!this.loop && util.indexOf(this.loop.rooms, room) !== -1;
  };

  Streamer.prototype.pause = function () {
    if (this.loop) this.loop.stop();
  };

  Streamer.prototype.resume = function () {
    if (this.loop) this.loop.start();
  };

  Streamer.prototype.stop = function () {
    if (this.loop) this.remove(this.loop.rooms.slice());
  };

  Streamer.prototype.eachLoop = function (fn) {
    if (this.loop) fn(this.loop);
  };

  Streamer.prototype.snapshot = function () {
    return this.loop ? [this.loop.info()] : [];
  };

  /**
   * The loop. States: 'streaming' (a stream open or opening), 'polling' (the long-poll after a failed open,
   * or every request once the loop stays with long-polling), 'waiting', 'resync', 'checking', 'stopped'.
   */
  function StreamLoop(streamer, rooms) {
    this.streamer = streamer;
    this.owner = streamer;
    this.key = MULTIPLEX_KEY;
    this.rooms = rooms;
    this.cid = null;
    this.state = 'idle';
    this.attempt = 0;
    this.lastError = null;
    /** 'stream', or 'poll' once streams failed to open MAX_FAILED_OPENS times in a row. */
    this.mode = 'stream';
    this.failedOpens = 0;
    this.reader = null;
    this.call = null;
    this.retryTimer = null;
    this.watchdog = null;
    this.recycleTimer = null;
    this.epoch = 0;
  }

  StreamLoop.prototype.info = function () {
    return {
      key: this.key,
      rooms: this.rooms.slice(),
      state: this.state,
      connectionId: this.cid,
      attempt: this.attempt,
      error: this.lastError ? this.lastError.code : null,
      transport: this.mode === 'stream' ? this.streamer.kind : 'poll'
    };
  };

  StreamLoop.prototype.start = function () {
    if (this.state !== 'idle' && this.state !== 'stopped') return;
    this.connect();
  };

  StreamLoop.prototype.stop = function () {
    this.epoch++;
    this.cancel();
    this.setState('stopped', null);
  };

  StreamLoop.prototype.cancel = function () {
    var timers = this.streamer.timers;
    if (this.reader) {
      this.reader.close();
      this.reader = null;
    }
    if (this.call) {
      if (this.call.handle) this.call.handle.abort();
      this.call = null;
    }
    if (this.retryTimer !== null) timers.clearTimeout(this.retryTimer);
    if (this.watchdog !== null) timers.clearTimeout(this.watchdog);
    if (this.recycleTimer !== null) timers.clearTimeout(this.recycleTimer);
    this.retryTimer = null;
    this.watchdog = null;
    this.recycleTimer = null;
  };

  /** The room set changed: a stream (or poll) in flight names the old set, so it is replaced at once. */
  StreamLoop.prototype.roomsChanged = function () {
    if (this.state === 'streaming' || this.state === 'polling') this.connect();
  };

  StreamLoop.prototype.connect = function () {
    if (this.mode === 'poll') this.pollNow(false);
    else this.openStream();
  };

  StreamLoop.prototype.cursorList = function () {
    var parts = [];
    for (var i = 0; i < this.rooms.length; i++) {
      parts.push(encodeURIComponent(this.rooms[i]) + ':' + this.streamer.cursorOf(this.rooms[i]));
    }
    return parts.join(',');
  };

  StreamLoop.prototype.openStream = function () {
    var self = this;
    var streamer = this.streamer;
    this.cancel();
    var path = '/api/stream?rooms=' + this.cursorList() + (this.cid ? '&cid=' + encodeURIComponent(this.cid) : '') + FORMATS[streamer.kind];
    var opened = false;
    var openedAt = 0;
    this.setState('streaming', this.lastError);
    // A reader that neither opens nor fails (an iframe whose error page never loads) is given up on.
    this.watchdog = streamer.timers.setTimeout(function () {
      self.watchdog = null;
      if (self.reader === reader && !opened) {
        self.cancel();
        self.pollNow(true);
      }
    }, streamer.openTimeoutMs);
    var reader = this.reader = openReader(streamer, streamer.baseUrl + path, {
      hello: function (data) {
        if (self.watchdog !== null) streamer.timers.clearTimeout(self.watchdog);
        self.watchdog = null;
        var parsed = util.parseJson(data);
        if (parsed.ok && parsed.value && typeof parsed.value.connectionId === 'string') self.cid = parsed.value.connectionId;
        opened = true;
        openedAt = util.now();
        self.failedOpens = 0;
        self.setState('streaming', null);
        self.recycleTimer = streamer.timers.setTimeout(function () {
          self.recycleTimer = null;
          if (self.reader === reader) self.connect();
        }, streamer.recycleMs);
      },
      event: function (data) {
        var parsed = util.parseJson(data);
        if (!parsed.ok || !parsed.value || typeof parsed.value.id !== 'number') return;
        self.attempt = 0;
        streamer.handler.events([parsed.value]);
      },
      resync: function () {
        if (self.reader !== reader) return;
        self.cancel();
        self.resync(self.rooms.slice());
      },
      end: function () {
        if (self.reader !== reader) return;
        self.reader = null;
        if (!opened) {
          // Why? The long-poll's answer says (and brings what is new meanwhile).
          self.pollNow(true);
          return;
        }
        if (util.now() - openedAt >= HEALTHY_STREAM_MS) self.attempt = 0;
        self.retryLater(null);
      }
    });
  };

  /** One long-poll, as the Poller's loop makes it; `afterFailedOpen`: it stands in for a stream that would not open. */
  StreamLoop.prototype.pollNow = function (afterFailedOpen) {
    var self = this;
    var streamer = this.streamer;
    this.cancel();
    var cursors = [];
    for (var i = 0; i < this.rooms.length; i++) cursors.push({ room: this.rooms[i], cursor: streamer.cursorOf(this.rooms[i]) });
    this.setState('polling', this.lastError);
    var call = this.call = { handle: null };
    this.watchdog = streamer.timers.setTimeout(function () {
      self.watchdog = null;
      if (self.call !== call) return;
      self.cancel();
      self.retryLater(util.error('COMET_ERR_POLL_TIMEOUT', 'no answer to the poll in ' + streamer.pollTimeoutMs + ' ms'));
    }, streamer.pollTimeoutMs);
    var handle = streamer.api.poll(cursors, this.cid, function (err, body, status, headers) {
      if (self.call !== call) return;
      self.cancel();
      self.onAnswer(err, body, headers, afterFailedOpen);
    });
    if (this.call === call) call.handle = handle;
  };

  StreamLoop.prototype.onAnswer = function (err, body, headers, afterFailedOpen) {
    if (err) {
      this.onError(err);
      return;
    }
    if (body.resync || headers['comet-resync']) {
      this.resync(this.rooms.slice());
      return;
    }
    if (!util.isArray(body.events)) {
      this.retryLater(util.error('COMET_ERR_BAD_RESPONSE', 'a poll answer without events'));
      return;
    }
    var cid = body.connectionId || headers['comet-connection-id'];
    if (cid) this.cid = cid;
    this.attempt = 0;
    this.lastError = null;
    // The poll works where the stream would not open: after a few of those, stay with polling.
    if (afterFailedOpen && ++this.failedOpens >= MAX_FAILED_OPENS) this.mode = 'poll';
    this.streamer.handler.events(body.events);
    if (this.state === 'polling' && !this.call) this.connect();
  };

  // Failures are handled as the poll loop handles them (comet-poller.js `recovery`), retrying with a stream.
  for (var method in CometChat.loopRecovery) {
    if (util.hasOwn(CometChat.loopRecovery, method)) StreamLoop.prototype[method] = CometChat.loopRecovery[method];
  }

  StreamLoop.prototype.restart = function () {
    this.connect();
  };

  StreamLoop.prototype.setState = function (state, err) {
    this.state = state;
    this.lastError = err || null;
    this.streamer.handler.state(this.info());
  };

  // ---- readers: open(url, on) -> {close()}; `on` gets hello(data), event(data), resync(), end() -----------

  function openReader(streamer, url, on) {
    if (streamer.kind === 'sse') return openEventSource(streamer.window, url, on);
    if (streamer.kind === 'iframe') return openIframe(streamer.window, url, streamer.byteBudget, on);
    return openXhrStream(url, streamer.byteBudget, on);
  }

  /** EventSource; closed on its first error, so it never reconnects by itself with the URL's old cursors. */
  function openEventSource(win, url, on) {
    var source = new win.EventSource(url);
    var closed = false;
    function close() {
      if (closed) return;
      closed = true;
      source.close();
    }
    source.addEventListener('hello', function (e) { if (!closed) on.hello(e.data); }, false);
    source.addEventListener('message', function (e) { if (!closed) on.event(e.data); }, false);
    source.addEventListener('resync', function () {
      if (closed) return;
      close();
      on.resync();
    }, false);
    source.onerror = function () {
      if (closed) return;
      close();
      on.end();
    };
    return { close: close };
  }

  /**
   * The SSE frames of `text` (complete blocks only, ended by a blank line) handed to `on`; returns how many
   * characters were consumed. Comments (keep-alives, padding) are skipped. Lines end in LF (the app's framing).
   */
  function dispatchFrames(text, on, isOpen) {
    var used = 0;
    var end;
    while (isOpen() && (end = text.indexOf('\n\n', used)) !== -1) {
      var lines = text.substring(used, end).split('\n');
      used = end + 2;
      var type = 'message';
      var data = [];
      for (var i = 0; i < lines.length; i++) {
        var line = lines[i];
        if (line.charAt(0) === ':') continue;
        var colon = line.indexOf(':');
        var field = colon === -1 ? line : line.substring(0, colon);
        var value = colon === -1 ? '' : line.substring(colon + 1).replace(/^ /, '');
        if (field === 'event') type = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length === 0) continue;
      if (type === 'hello') on.hello(data.join('\n'));
      else if (type === 'message') on.event(data.join('\n'));
      else if (type === 'resync') on.resync();
    }
    return used;
  }

  /**
   * XHR streaming: reads what was added to responseText at each readyState 3 (and 4). The response must be a
   * 200 `text/event-stream`; anything else is a failed open. Past `byteBudget` characters the request is
   * ended like a stream the server ended, and the loop opens a new one from its cursors.
   */
  function openXhrStream(url, byteBudget, on) {
    var xhr = util.createXhr();
    var closed = false;
    var used = 0;
    var ok = null;
    function isOpen() { return !closed; }
    function close() {
      if (closed) return;
      closed = true;
      xhr.onreadystatechange = util.noop;
      try {
        xhr.abort();
      } catch (e) { /* already done */ }
    }
    function finish() {
      if (closed) return;
      close();
      on.end();
    }
    xhr.open('GET', url, true);
    xhr.setRequestHeader('Accept', 'text/event-stream');
    xhr.onreadystatechange = function () {
      if (closed || xhr.readyState < 3) return;
      if (ok === null) {
        var status = 0;
        try {
          status = xhr.status;
        } catch (e) { /* old IE */ }
        ok = status === 200 && /^text\/plain/.test(xhr.getResponseHeader('Content-Type') || '');
      }
      if (!ok) {
        if (xhr.readyState === 4) finish();
        return;
      }
      var text = '';
      try {
        text = xhr.responseText;
      } catch (e) { /* IE before 10 refuses responseText at readyState 3 */ }
      used += dispatchFrames(text.substring(used), on, isOpen);
      if (xhr.readyState === 4 || text.length >= byteBudget) finish();
    };
    try {
      xhr.send(null);
    } catch (e) {
      window.setTimeout(finish, 0);
    }
    return { close: close };
  }

  /** Iframes streaming now, by name: `CometChat._s` hands each one's frames on. */
  var iframes = {};
  var iframeSeq = 0;

  /**
   * Called by the iframe document after each frame (server/grip/stream-frames.ts) with the frame's text. A name
   * that is not streaming now (an iframe being removed) is ignored.
   */
  CometChat._s = function (name, text) {
    if (util.hasOwn(iframes, name) && typeof text === 'string') iframes[name](text);
  };

  /**
   * The forever iframe: hidden, named, loading the stream as an HTML document. Its `load` event means the
   * document ended (the stream ended, or an error page: not opened). Removing it ends the request.
   */
  function openIframe(win, url, byteBudget, on) {
    var doc = win.document;
    var name = 'comet-stream-' + (++iframeSeq) + '-' + util.now();
    var frame = doc.createElement('iframe');
    var closed = false;
    var read = 0;
    function isOpen() { return !closed; }
    function close() {
      if (closed) return;
      closed = true;
      delete iframes[name];
      stopListening();
      if (frame.parentNode) frame.parentNode.removeChild(frame);
    }
    function finish() {
      if (closed) return;
      close();
      on.end();
    }
    iframes[name] = function (text) {
      read += text.length;
      // The text ends inside the frame's comment line; the blank line ends the frame.
      dispatchFrames(text + '\n\n', on, isOpen);
      if (read >= byteBudget) finish();
    };
    frame.name = name;
    frame.style.display = 'none';
    frame.setAttribute('aria-hidden', 'true');
    frame.setAttribute('tabindex', '-1');
    var stopListening = util.listen(frame, 'load', finish);
    frame.src = url;
    doc.body.appendChild(frame);
    return { close: close };
  }

  Streamer.dispatchFrames = dispatchFrames;
  CometChat.Streamer = Streamer;
}(this));
