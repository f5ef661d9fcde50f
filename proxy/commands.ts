/**
 * Control API items after validation (control-validation.ts): what the hold
 * registry executes. Wire names (`prev-id`, `connection-id`, `formats`) become
 * plain fields and the `http-response` format is decoded once, up front.
 */
import type { ItemResponse } from './response.js';

/** One `POST /publish/` item. */
export interface PublishCommand {
  channel: string;
  /** Becomes the channel's last id. */
  id?: string;
  /** The id before this one on the channel; a parked request whose prev-id differs is re-asked. */
  prevId?: string;
  /** `send` delivers `response`; `hint` re-asks every parked request instead. */
  action: 'send' | 'hint';
  /** The item's response; null for `hint`. */
  response: ItemResponse | null;
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
