/**
 * Node-only: a `pg` (node-postgres) pool for the Postgres backend. Never imported by the Web entry.
 * `pg` is an optional peer dependency, loaded on the first pool.
 */

import type pg from 'pg'
import { requireOptional } from '../node/optional-package.js'
import type { PgPoolLike } from './pool-types.js'
import { clientTimeoutSettings, type PostgresTimeouts, resolveTimeouts } from './timeouts.js'

export interface PgPoolOptions extends PostgresTimeouts {
  /** Maximum connections (default 10). */
  max?: number
  /** `ssl` as node-postgres takes it (default: from the URL's `sslmode`). */
  ssl?: pg.PoolConfig['ssl']
  /** Extra node-postgres pool settings (they win over the ones above). */
  extra?: Omit<pg.PoolConfig, 'connectionString'>
}

/**
 * A node-postgres pool for `url` (`postgres://user:pass@host:port/db`). Connects lazily. The
 * timeouts (`timeouts.ts`) have defaults, so a half-open connection fails its call instead of
 * hanging it; idle and checked-out connections that break never crash the process. Without the
 * `pg` package installed: `ConfigError` naming it.
 */
export function createPgPool(url: string, options: PgPoolOptions = {}): PgPoolLike & pg.Pool {
  const { Pool } = requireOptional<typeof pg>('pg', 'createPgPool (the postgres backend over TCP)')
  const t = resolveTimeouts(options)
  const pool = new Pool({
    connectionString: url,
    max: options.max ?? 10,
    ...clientTimeoutSettings(t),
    keepAlive: t.keepAlive,
    keepAliveInitialDelayMillis: t.keepAliveInitialDelayMillis,
    ...(options.ssl !== undefined ? { ssl: options.ssl } : {}),
    ...options.extra,
  })
  // an idle client losing its connection must not crash the process; the next query reconnects
  pool.on('error', () => undefined)
  return pool
}
