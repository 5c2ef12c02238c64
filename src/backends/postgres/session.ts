/**
 * The SQL pool the Postgres backend receives (the subset of `pg.Pool` and Neon's `Pool` it
 * calls), plus statement accounting and transactions with retry on deadlock/serialization.
 */

import { StorageError, StoreError } from '../../errors.js'
import type { StoreRequestStats } from '../../types.js'
import { copyIn } from './copy-in.js'

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

/** A pooled connection: `pg.PoolClient` or Neon's `PoolClient`. */
export interface PgClientLike extends PgQueryable {
  release(err?: Error | boolean): void
}

/** What the backend needs from a pool: `pg.Pool` and `@neondatabase/serverless`'s `Pool` both fit. */
export interface PgPoolLike extends PgQueryable {
  connect(): Promise<PgClientLike>
  end?(): Promise<void>
}

/** Statement kinds, mapped onto the contract's request counters. */
export type StatementKind = 'get' | 'put' | 'head' | 'list' | 'delete'

const RETRYABLE = new Set(['40P01', '40001']) // deadlock_detected, serialization_failure
const MAX_ATTEMPTS = 8

/** Rough size of a parameter as sent (strings by length, numbers 8 bytes, arrays summed). */
function paramBytes(v: unknown): number {
  if (v === null || v === undefined) return 0
  if (typeof v === 'string') return v.length
  if (Array.isArray(v)) {
    let n = 0
    for (const x of v) n += x === null ? 0 : typeof x === 'string' ? x.length : 8
    return n
  }
  return 8
}

function resultBytes(rows: unknown[]): number {
  if (rows.length === 0) return 0
  const first = rows[0]
  const width = Array.isArray(first) ? first.length : Object.keys(first as object).length
  return rows.length * width * 8
}

/** Errors from the database that are not ours become `StoreError` (HTTP 502) naming the SQLSTATE. */
export function wrapDbError(err: unknown): unknown {
  if (err instanceof StorageError) return err
  const e = err as { code?: string; message?: string }
  return new StoreError(`postgres: ${e?.message ?? String(err)}`, e?.code ? { sqlstate: e.code } : undefined, err)
}

/** Runs statements and counts them. */
export class Session {
  private readonly counts: StoreRequestStats = { get: 0, put: 0, head: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 }

  constructor(readonly pool: PgPoolLike) {}

  /** Transactions retried after a deadlock or serialization failure. */
  private retries = 0

  stats(): StoreRequestStats {
    return { ...this.counts, retries: this.retries }
  }

  /** One statement on `db` (the pool or a transaction's client). */
  async run(db: PgQueryable, kind: StatementKind, text: string, values: unknown[] = [], array = false): Promise<PgQueryResult> {
    this.counts[kind]++
    if (kind === 'put' || kind === 'delete') for (const v of values) this.counts.bytesWritten += paramBytes(v)
    let res: PgQueryResult
    try {
      res = await db.query(array ? { text, values, rowMode: 'array' } : { text, values })
    } catch (err) {
      throw wrapDbError(err)
    }
    this.counts.bytesRead += resultBytes(res.rows)
    return res
  }

  /** `COPY ... FROM STDIN` on `db` (a client that passes `canCopy`) with `chunks` as its data; one put. */
  async copy(db: PgQueryable, text: string, chunks: Iterable<Uint8Array>): Promise<number> {
    this.counts.put++
    const counts = this.counts
    function* counted() {
      for (const chunk of chunks) {
        counts.bytesWritten += chunk.length
        yield chunk
      }
    }
    try {
      return await copyIn(db, text, counted())
    } catch (err) {
      throw wrapDbError(err)
    }
  }

  /**
   * Runs `fn` in one transaction (READ COMMITTED) and commits. Deadlocks and serialization
   * failures roll back and run `fn` again: it must not keep state between attempts.
   */
  async transaction<T>(fn: (client: PgQueryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: PgClientLike
      try {
        client = await this.pool.connect()
      } catch (err) {
        throw wrapDbError(err)
      }
      let broken: Error | undefined
      try {
        await client.query({ text: 'BEGIN' })
        const out = await fn(client)
        await client.query({ text: 'COMMIT' })
        return out
      } catch (err) {
        try {
          await client.query({ text: 'ROLLBACK' })
        } catch (rollbackErr) {
          broken = rollbackErr as Error // the connection is unusable: the pool must drop it
        }
        const cause = (err as StoreError)?.cause ?? err
        const code = (cause as { code?: string })?.code
        if (code && RETRYABLE.has(code) && attempt < MAX_ATTEMPTS) {
          this.retries++
          await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt))
          continue
        }
        throw wrapDbError(err)
      } finally {
        client.release(broken ?? false)
      }
    }
  }
}
