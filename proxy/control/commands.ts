/**
 * Control API items after validation (control-validation.ts): what the hold
 * registry executes. Wire names (`prev-id`, `connection-id`, `formats`) become
 * plain fields and the `http-response` format is decoded once, up front.
 */
import type { ItemResponse } from '../http/response.js';

/** One `POST /publish/` item. */
export interface PublishCommand {
  channel: string;
  /** Becomes the channel's last id. */
  id?: string;
  /** The id before this one on the channel; a parked request whose prev-id differs is re-asked. */
  prevId?: string;
  /**
   * `send` delivers `response`; `hint` re-asks every parked request instead; `none`: the item has no
   * `http-response` for parked requests (an `http-stream` item only, docs/protocol.md §14.3).
   */
  action: 'send' | 'hint' | 'none';
  /** The item's response; null for `hint` and `none`. */
  response: ItemResponse | null;
  /** The item's `http-stream` format, for streams subscribed to the channel (docs/protocol.md §14.3). */
  stream?: StreamItem;
  /** The item's `meta` (string values), read by the channel filters of parked requests (`skip-self`: `sender`). */
  meta?: Record<string, string>;
  /** Leases to end before the item goes out (`comet-revoke`, docs/protocol.md §13.4): a leave event ends the lease it affects. */
  revoke?: RevokeCommand[];
}

/** An `http-stream` format, decoded: `send` writes `content` to every stream on the channel, `close` ends them. */
export interface StreamItem {
  action: 'send' | 'close';
  content: Buffer;
}

/** One `POST /revoke/` item (docs/protocol.md §13.4): ends leases of a subject or a connection ID. */
export interface RevokeCommand {
  subject?: string;
  connectionId?: string;
  /** Leases issued at or before this time (ms since the epoch) are refused from now on. */
  issuedBeforeMs: number;
}

/** One `POST /push/` item. */
export interface PushCommand {
  connectionId: string;
  /** Echoed in logs only. */
  id?: string;
  response: ItemResponse;
}

/** One `POST /close/` item. */
export interface CloseCommand {
  connectionId: string;
  /** Response for the parked request; default 410 `PROXY_ERR_CONNECTION_CLOSED`. */
  response?: ItemResponse;
}
