/** Node-only: a `pg` (node-postgres) pool for the Postgres backend. Never imported by the Web entry. */

import pg from 'pg'
import type { PgPoolLike } from './session.js'

export interface PgPoolOptions {
  /** Maximum connections (default 10). */
  max?: number
  /** `ssl` as node-postgres takes it (default: from the URL's `sslmode`). */
  ssl?: pg.PoolConfig['ssl']
  /** Milliseconds to wait for a connection (default 10,000). */
  connectionTimeoutMillis?: number
  /** Extra node-postgres pool settings. */
  extra?: Omit<pg.PoolConfig, 'connectionString'>
}

/** A node-postgres pool for `url` (`postgres://user:pass@host:port/db`). Connects lazily. */
export function createPgPool(url: string, options: PgPoolOptions = {}): PgPoolLike & pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
    ...(options.ssl !== undefined ? { ssl: options.ssl } : {}),
    ...options.extra,
  })
  // an idle client losing its connection must not crash the process; the next query reconnects
  pool.on('error', () => undefined)
  return pool
}
