/**
 * Wire types of the proxy's control API (docs/protocol.md, "Control API").
 * `POST /publish/` is Pushpin's publish format; `/push/` and `/close/` are our
 * connection-ID extension in the same shape.
 */

/** Pushpin's `http-response` format: the response written to a parked client. */
export interface HttpResponseFormat {
  /** `send` (default) writes this response; `hint` makes the proxy re-ask the app instead. */
  action?: 'send' | 'hint';
  /** Status code, default 200. On the wire a string of three digits is accepted too (GRIP libraries send `"404"`). */
  code?: number;
  /** Reason phrase, default the standard one for `code`. */
  reason?: string;
  /** Headers as an object or as a list of `[name, value]` pairs. `Grip-*` and hop-by-hop headers are ignored. */
  headers?: Record<string, string> | Array<[string, string]>;
  /** UTF-8 body. Exactly one of `body` and `body-bin` is required for `send`. */
  body?: string;
  /** Base64 body. */
  'body-bin'?: string;
}

export interface ItemFormats {
  'http-response'?: HttpResponseFormat;
  /** Other GRIP formats (`http-stream`, `ws-message`) are ignored; a publish item with only those is accepted and skipped. */
  [other: string]: unknown;
}

/** `POST /publish/` item (GRIP). */
export interface PublishItem {
  channel: string;
  /** This item's id on the channel; becomes the channel's last id. */
  id?: string;
  /** The id of the item before this one on the channel; parked requests whose prev-id differs are re-asked. */
  'prev-id'?: string;
  formats: ItemFormats;
  /** Pushpin's item meta, read by channel filters (`skip-self` compares `sender` with the hold's `user`). */
  meta?: Record<string, string>;
  /** Extension (docs/protocol.md §13.4): leases to end before this item reaches anyone. */
  'comet-revoke'?: RevokeItem[];
}

/** `POST /push/` item: one response for one connection ID, queued if it is not parked. */
export interface PushItem {
  'connection-id': string;
  /** Optional id, echoed in logs only. */
  id?: string;
  formats: ItemFormats;
}

/** `POST /close/` item: answer the connection's parked request (if any), drop its queue, refuse it from now on. */
export interface CloseItem {
  'connection-id': string;
  /** Response for the parked request; default 410 with `{code: "PROXY_ERR_CONNECTION_CLOSED"}`. */
  formats?: ItemFormats;
}

export interface ItemsBody<T> {
  items: T[];
}

/** Answer of `/publish/`, `/push/` and `/close/`. */
export interface ControlResult {
  /** Parked requests answered by this call. */
  delivered: number;
  /** Items kept for connection IDs that are not parked now. */
  queued: number;
  /** Items discarded by this call (queue full, queue purged for a resync, or a closed connection ID). */
  dropped: number;
  /** Parked requests re-asked to the app instead of answered (prev-id mismatch or `hint`). */
  reasked: number;
}

/** `POST /revoke/` item (docs/protocol.md §13.4): ends re-poll leases. At least one of `subject`, `connection-id`. */
export interface RevokeItem {
  /** The lease's `sub` claim (the app's session handle). */
  subject?: string;
  'connection-id'?: string;
  /** Leases issued at or before this time (ms since the epoch) end; default: when the proxy received the call. */
  'issued-before'?: number;
}

/** Answer of `/revoke/`: leases this proxy ended (0 with the Redis bus: every proxy applies it afterwards). */
export interface RevokeResult {
  revoked: number;
}

/** `GET /stats`. */
export interface ProxyStats {
  /** Requests parked right now. */
  parked: number;
  /** What they keep, in bytes: request heads, bodies and held responses (docs/protocol.md §4 step 4). */
  parkedBytes: number;
  /** Requests being re-asked to the app right now. */
  reasking: number;
  /** Connection IDs the proxy keeps state for (parked, queued, resync pending or closed). */
  connections: number;
  /** Items queued for connection IDs right now, and their bytes. */
  queuedItems: number;
  queuedBytes: number;
  /** Channels with a known last id. */
  channels: number;
  /** Counters since start. */
  holds: number;
  publishes: number;
  pushes: number;
  deliveries: number;
  timeouts: number;
  reasks: number;
  resyncs: number;
  dropped: number;
  clientAborts: number;
  /** Held requests answered early because the client pipelined another request behind them. */
  pipelineReleases: number;
  /**
   * Held requests node:http had parsed (a client's first poll) that the client front took over before parking them,
   * so they keep and cost what a leased re-poll does (docs/protocol.md §13.3, the client front).
   */
  frontTakeovers: number;
  /**
   * Times this proxy found it may have missed bus entries (Redis restarted or the stream was trimmed past
   * its position) and re-asked every request parked on channels (docs/scaleout.md). Always 0 without Redis.
   */
  busResyncs: number;
  /** Re-poll leases held now, and items in the channel buffer (docs/protocol.md §13). */
  leases: number;
  bufferedItems: number;
  /** Re-polls the proxy answered from its buffer, parked without the app, or sent to the app although of a leased shape. */
  repollAnswers: number;
  repollParks: number;
  repollToApp: number;
  /** Stream holds open now (docs/protocol.md §14). */
  streams: number;
  /** Since start: `http-stream` items written to streams, keep-alives written, streams ended with a resync (slow reader, prev-id gap). */
  streamChunks: number;
  streamKeepAlives: number;
  streamResyncs: number;
}
