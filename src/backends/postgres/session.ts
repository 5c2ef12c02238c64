/**
 * Statement accounting over the SQL pool the Postgres backend receives (`pool-types.ts`), and
 * transactions with retry on deadlock/serialization.
 */

import { CommitInDoubtError, StorageError, StoreError } from '../../core/errors.js'
import type { StoreRequestStats } from '../../core/types.js'
import { copyIn } from './copy-in.js'
import type { ErrorEvents, PgClientLike, PgPoolLike, PgQueryable, PgQueryResult } from './pool-types.js'

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

/**
 * Why a driver error means the connection itself is gone or stuck (not an SQL error on a
 * healthy connection): `timeout` (no answer in time, or no connection in time), `lost` (reset,
 * closed, or ended by the server), else null.
 */
export function connectionProblem(err: unknown): 'timeout' | 'lost' | null {
  if (!err || typeof err !== 'object' || err instanceof StorageError) return null
  const e = err as { code?: unknown; message?: unknown; severity?: unknown }
  const message = typeof e.message === 'string' ? e.message : ''
  if (typeof e.severity === 'string') return e.severity === 'FATAL' || e.severity === 'PANIC' ? 'lost' : null
  if (/timeout|timed out/i.test(message)) return 'timeout'
  if (typeof e.code === 'string' && /^E[A-Z]{3,}$/.test(e.code)) return 'lost' // ECONNRESET, EPIPE, ECONNREFUSED...
  if (/connection terminated|not queryable|connection error|socket|websocket|closed|ended/i.test(message)) return 'lost'
  return null
}

/** What a failed write did: `none` (rolled back or never committed) or `unknown` (lost during COMMIT). */
export type WriteOutcome = 'none' | 'unknown'

/**
 * The error for a connection that broke or stalled, saying what became of the write, if any:
 * `StoreError` (502) when it is known (`none`: rolled back, nothing written) or there was no
 * write; `CommitInDoubtError` (503, `details.outcome: 'unknown'`) when it was lost during COMMIT.
 * `what` names the write in the in-doubt message (e.g. `append of 4 row(s) into dataset bars`).
 */
export function connectionError(
  err: unknown,
  kind: 'timeout' | 'lost',
  outcome?: WriteOutcome,
  what = 'a PostgreSQL transaction',
): StoreError | CommitInDoubtError {
  const e = err as { message?: string; code?: string }
  const details = {
    reason: kind === 'timeout' ? 'timeout' : 'connection_lost',
    ...(outcome ? { outcome } : {}),
    ...(e?.code ? { driverCode: e.code } : {}),
  }
  // the server may have committed: retrying is safe (upsert, replace and delete are idempotent;
  // an append whose keys already hold the batch's rows is no conflict)
  if (outcome === 'unknown') return new CommitInDoubtError(what, err, details)
  const why =
    kind === 'timeout'
      ? `no answer from PostgreSQL in time (${e?.message ?? String(err)})`
      : `the connection to PostgreSQL was lost (${e?.message ?? String(err)})`
  const tail = outcome === 'none' ? ' before COMMIT: the transaction was rolled back, nothing was written' : ''
  return new StoreError(`postgres: ${why}${tail}`, details, err)
}

/** Errors from the database that are not ours become `StoreError` (HTTP 502) naming the SQLSTATE. */
export function wrapDbError(err: unknown): unknown {
  if (err instanceof StorageError) return err
  const kind = connectionProblem(err)
  if (kind) return connectionError(err, kind)
  const e = err as { code?: string; message?: string }
  return new StoreError(`postgres: ${e?.message ?? String(err)}`, e?.code ? { sqlstate: e.code } : undefined, err)
}

const ignore = () => undefined
/** Clients that already carry our fallback 'error' listener. */
const guarded = new WeakSet<object>()

/** A client with no 'error' listener would crash the process when its socket breaks: give it one, once. */
function guard(emitter: ErrorEvents): void {
  if (typeof emitter.on !== 'function' || guarded.has(emitter)) return
  guarded.add(emitter)
  emitter.on('error', ignore)
}

/** Runs statements and counts them. */
export class Session {
  private readonly counts: StoreRequestStats = { get: 0, put: 0, head: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 }

  constructor(readonly pool: PgPoolLike) {
    // an idle pooled client that breaks is reported on the pool: without a listener, a crash
    if (typeof pool.listenerCount === 'function' && pool.listenerCount('error') === 0) guard(pool)
  }

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
   * A connection of the pool for the caller alone (it must `release` it on every path; with an
   * error to destroy it). It carries an 'error' listener, so its socket breaking never crashes
   * the process. Failing to connect is a `StoreError` (with `outcome`, when given: what became
   * of the caller's write).
   */
  async checkout(outcome?: WriteOutcome): Promise<PgClientLike> {
    let client: PgClientLike
    try {
      client = await this.pool.connect()
    } catch (err) {
      const kind = connectionProblem(err)
      throw kind ? connectionError(err, kind, outcome) : wrapDbError(err)
    }
    guard(client)
    return client
  }

  /**
   * Runs `fn` in one transaction (READ COMMITTED) and commits. Deadlocks and serialization
   * failures roll back and run `fn` again: it must not keep state between attempts. A connection
   * that breaks or stalls before COMMIT fails the call with a `StoreError` (`details.outcome`
   * `none`: nothing was written); one lost during COMMIT with a `CommitInDoubtError` naming
   * `what` (`details.outcome` `unknown`: it may have landed). The connection is destroyed, never
   * returned to the pool.
   */
  async transaction<T>(fn: (client: PgQueryable) => Promise<T>, what?: string): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.checkout('none')
      let broken: Error | undefined
      const onError = (err: Error) => {
        broken ??= err
      }
      client.on?.('error', onError)
      let committing = false
      try {
        await client.query({ text: 'BEGIN' })
        const out = await fn(client)
        committing = true
        await client.query({ text: 'COMMIT' })
        return out
      } catch (err) {
        const cause = err instanceof StoreError && err.cause !== undefined ? err.cause : err
        const kind = connectionProblem(cause) ?? (broken ? 'lost' : null)
        if (kind) {
          broken ??= cause instanceof Error ? cause : new Error(String(cause))
          throw connectionError(cause, kind, committing ? 'unknown' : 'none', what)
        }
        try {
          await client.query({ text: 'ROLLBACK' })
        } catch (rollbackErr) {
          broken = rollbackErr as Error // the connection is unusable: the pool must drop it
        }
        const code = (cause as { code?: string })?.code
        if (code && RETRYABLE.has(code) && attempt < MAX_ATTEMPTS) {
          this.retries++
          await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt))
          continue
        }
        throw wrapDbError(err)
      } finally {
        client.release(broken ?? false)
        client.removeListener?.('error', onError)
      }
    }
  }
}
