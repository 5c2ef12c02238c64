/** Types the HTTP app shares with its auth, config and route modules (kept apart from `app.ts` so they do not import it). */

/** A bearer token and the scopes it grants. */
export interface ApiToken {
  token: string
  scopes: ('read' | 'write' | 'admin')[]
  name?: string
}

/** Hono variables the app sets on every request: the operation name and the error code it ended with. */
export type Env = { Variables: { op: string; errorCode: string } }

/** The options of `createApp` that `httpOptionsFromEnv` can set from the environment. */
export interface AppAccessOptions {
  /** None/empty: no auth, see `openWrites`. */
  tokens?: ApiToken[]
  /** `undefined`: no CORS headers; `['*']`: any origin. */
  cors?: { origins: string[] }
  /** Request body limit in bytes (default 64 MiB): 413 `payload_too_large`. */
  maxBodyBytes?: number
  /**
   * With no tokens: `true` serves reads to anyone; `false` refuses them with 403 (the Worker's
   * default, `PUBLIC_READS`). Unset: reads are open, as for `true`, and `/healthz` shows failure
   * details (set it explicitly on a public server).
   */
  publicReads?: boolean
  /** Open local mode only: host names served besides localhost, 127.0.0.1 and [::1] (`ALLOWED_HOSTS`). */
  allowedHosts?: string[]
}
