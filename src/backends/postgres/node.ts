/** Node-only part of the PostgreSQL backend: the `pg` pool and a pool for a URL by driver choice. */

import { requireOptional } from '../node/optional-package.js'
import { choosePostgresDriver, type PostgresDriver } from './driver.js'
import { createNeonPool, type NeonPoolOptions } from './neon-pool.js'
import { createPgPool, type PgPoolOptions } from './pg-pool.js'
import type { PgPoolLike } from './pool-types.js'
import type { PostgresTimeouts } from './timeouts.js'

export { createPgPool, type PgPoolOptions } from './pg-pool.js'

/**
 * A pool for `url`: node-postgres, or Neon over WebSocket (`ws` as the WebSocket on Node).
 * `timeouts` apply to either driver (defaults in `timeouts.ts`); `pg` / `neon` settings win.
 */
export async function createPostgresPool(
  url: string,
  options: {
    driver?: PostgresDriver | 'auto'
    max?: number
    timeouts?: PostgresTimeouts
    pg?: PgPoolOptions
    neon?: NeonPoolOptions
  } = {},
): Promise<PgPoolLike> {
  const driver = choosePostgresDriver(url, options.driver)
  if (driver === 'pg') return createPgPool(url, { max: options.max, ...options.timeouts, ...options.pg })
  const neon = { max: options.max, ...options.timeouts, ...options.neon }
  if (neon.webSocketConstructor === undefined && typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') {
    neon.webSocketConstructor = requireOptional('ws', 'the neon driver on a runtime without WebSocket')
  }
  return createNeonPool(url, neon)
}
