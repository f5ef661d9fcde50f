/** Every error crosses the wire as this JSON body, with an HTTP status that fits it. */
export interface WireError {
  /** Stable machine-readable code, e.g. `PROXY_ERR_UNAUTHORIZED`, `APP_ERR_NOT_MEMBER`. */
  code: string;
  /** Human-readable explanation; not an API, may change. */
  message: string;
}

export function wireError(code: string, message: string): WireError {
  return { code, message };
}
