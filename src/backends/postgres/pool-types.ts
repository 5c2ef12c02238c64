/** The SQL pool the Postgres backend receives: the subset of `pg.Pool` and Neon's `Pool` it calls. */

export interface PgQueryConfig {
  text: string
  values?: unknown[]
  rowMode?: 'array'
}

export interface PgQueryResult {
  rows: any[]
  rowCount?: number | null
}

export interface PgQueryable {
  query(config: PgQueryConfig): Promise<PgQueryResult>
}

/** The event-emitter part of pg/Neon clients and pools (optional: other pools may have none). */
export interface ErrorEvents {
  on?(event: 'error', listener: (err: Error) => void): unknown
  removeListener?(event: 'error', listener: (err: Error) => void): unknown
  listenerCount?(event: 'error'): number
}

/** A pooled connection: `pg.PoolClient` or Neon's `PoolClient`. */
export interface PgClientLike extends PgQueryable, ErrorEvents {
  /** `release(err)` destroys the connection instead of returning it to the pool. */
  release(err?: Error | boolean): void
}

/** What the backend needs from a pool: `pg.Pool` and `@neondatabase/serverless`'s `Pool` both fit. */
export interface PgPoolLike extends PgQueryable, ErrorEvents {
  connect(): Promise<PgClientLike>
  end?(): Promise<void>
}
