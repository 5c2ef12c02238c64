/**
 * Timeouts of the Postgres pools (`pg` and Neon): without them a half-open connection (a peer
 * that vanished without a FIN or RST) hangs its call forever and, one call at a time, takes the
 * whole pool with it. Validated once, when the pool is made.
 */

import { ConfigError } from '../../core/errors.js'

export interface PostgresTimeouts {
  /** Milliseconds to open a connection, or to wait for one from a full pool (default 10,000). */
  connectionTimeoutMillis?: number
  /**
   * Server-side `statement_timeout` (default 60,000): the server cancels a longer statement
   * (SQLSTATE 57014) and the connection stays usable.
   */
  statementTimeoutMillis?: number
  /**
   * Client-side limit on waiting for a statement's answer (default 65,000, a little past the
   * statement timeout so the server's own cancel normally wins). It is what ends a call on a
   * half-open connection; that connection is then destroyed, not returned to the pool.
   */
  queryTimeoutMillis?: number
  /** Idle pooled connections are closed after this long (default 10,000). */
  idleTimeoutMillis?: number
  /**
   * Server-side `idle_in_transaction_session_timeout` (default 60,000): a session whose client
   * vanished mid-transaction is ended and its locks released.
   */
  idleInTransactionTimeoutMillis?: number
  /** TCP keepalive on `pg` connections (default true; Neon runs over a WebSocket and has none). */
  keepAlive?: boolean
  /** Idle time before the first keepalive probe (default 10,000). */
  keepAliveInitialDelayMillis?: number
}

export const DEFAULT_TIMEOUTS: Required<PostgresTimeouts> = {
  connectionTimeoutMillis: 10_000,
  statementTimeoutMillis: 60_000,
  queryTimeoutMillis: 65_000,
  idleTimeoutMillis: 10_000,
  idleInTransactionTimeoutMillis: 60_000,
  keepAlive: true,
  keepAliveInitialDelayMillis: 10_000,
}

const MILLIS: (keyof PostgresTimeouts)[] = [
  'connectionTimeoutMillis',
  'statementTimeoutMillis',
  'queryTimeoutMillis',
  'idleTimeoutMillis',
  'idleInTransactionTimeoutMillis',
  'keepAliveInitialDelayMillis',
]

/** The timeouts with defaults filled in; `ConfigError` naming the setting for a bad value (0 turns a timeout off). */
export function resolveTimeouts(given: PostgresTimeouts = {}): Required<PostgresTimeouts> {
  const out = { ...DEFAULT_TIMEOUTS }
  for (const key of MILLIS) {
    const v = given[key]
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2_147_483_647) {
      const message = `expected a whole number of milliseconds >= 0 (0: no timeout), got ${JSON.stringify(v)}`
      throw new ConfigError(`postgres ${key}: ${message}`, [{ path: key, message }])
    }
    ;(out as Record<string, unknown>)[key] = v
  }
  if (given.keepAlive !== undefined) {
    if (typeof given.keepAlive !== 'boolean') {
      const message = `expected true or false, got ${JSON.stringify(given.keepAlive)}`
      throw new ConfigError(`postgres keepAlive: ${message}`, [{ path: 'keepAlive', message }])
    }
    out.keepAlive = given.keepAlive
  }
  return out
}

/** The client settings both drivers (pg and Neon's fork of it) understand; 0 turns each off there too. */
export function clientTimeoutSettings(t: Required<PostgresTimeouts>): Record<string, number> {
  return {
    connectionTimeoutMillis: t.connectionTimeoutMillis,
    idleTimeoutMillis: t.idleTimeoutMillis,
    statement_timeout: t.statementTimeoutMillis,
    query_timeout: t.queryTimeoutMillis,
    idle_in_transaction_session_timeout: t.idleInTransactionTimeoutMillis,
  }
}
