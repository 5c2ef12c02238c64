export { BodiesBusyError, MethodNotAllowedError, UnhealthyError, WritesDisabledError } from '../core/errors.js'

/** The HTTP API (`/v1`) over a `DataStorage`: the Hono app, its auth, config from env, stats and body/response formats. */

export {
  type BodyFormat,
  bodyFormat,
  encodeTable,
  OUTPUT_CONTENT_TYPES,
  type OutputFormat,
  outputFormat,
  parseBody,
  tableResponse,
} from '../formats/index.js'
export { type AppOptions, createApp, DEFAULT_MAX_BODY_BYTES, HEALTH_TIMEOUT_MS } from './app.js'
export type { ApiToken } from './app-types.js'
export { createAuth, hasScope, type Scope, timingSafeEqual } from './auth.js'
export { type BodyLimits, bodyLimitsFromConfig, DEFAULT_BODY_LIMITS } from './body-limits.js'
export { httpOptionsFromEnv, parseApiTokens } from './config.js'
export { MAX_LIMIT } from './params.js'
export { type PublicError, publicError } from './public-error.js'
export { HttpStats, RESERVOIR_SIZE, type StatsSnapshot } from './stats.js'
