/**
 * The op log in PostgreSQL: table `friday_oplog` in the backend's schema, one row per record
 * (the record itself as `jsonb`, plus the columns queries filter on). A flush is one
 * multi-row `INSERT ... SELECT FROM jsonb_array_elements($1)` statement; a query one indexed
 * `SELECT`; retention one `DELETE ... WHERE at < $1`. Statements go through the backend's
 * session, so they count in its `requestStats()`.
 *
 * `jsonb` cannot hold NUL (`\u0000`) nor lone UTF-16 surrogates: strings (keys too) are stored
 * with U+FFFD in their place. Should the database still refuse a batch's data, the records are
 * stored one by one, and one it refuses on its own is stored as a stub that says why, so one
 * bad record never blocks the others (the batcher would otherwise retry it forever).
 */

import type { OpLogQuery, OpLogStore, OpRecord } from '../../core/oplog-types.js'
import type { Session } from './session.js'
import { ident, qualified } from './sql.js'

export const OPLOG_TABLE = 'friday_oplog'

/** NUL, and UTF-16 surrogates without their other half. */
const NOT_JSONB = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** A string `jsonb` accepts: NUL and lone surrogates become U+FFFD. */
export function jsonbSafe(text: string): string {
  return text.replace(NOT_JSONB, '\uFFFD')
}

/** `value` with every string, and every object key, made `jsonbSafe`. */
function sanitize(value: unknown): unknown {
  if (typeof value === 'string') return jsonbSafe(value)
  if (Array.isArray(value)) return value.map(sanitize)
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[jsonbSafe(k)] = sanitize(v)
    return out
  }
  return value
}

/** The database refused the data itself (SQLSTATE class 22, data exception), not the connection. */
function isDataError(err: unknown): boolean {
  const sqlstate = (err as { details?: { sqlstate?: unknown } })?.details?.sqlstate
  return typeof sqlstate === 'string' && sqlstate.startsWith('22')
}

export class PostgresOpLogStore implements OpLogStore {
  private readonly table: string
  private setup: Promise<void> | null = null

  /**
   * @param session the backend's session (its pool and statement counters)
   * @param schemaName the backend's schema
   * @param ready resolves once the schema exists (the backend's own setup)
   */
  constructor(
    private readonly session: Session,
    private readonly schemaName: string,
    private readonly ready: () => Promise<void>,
  ) {
    this.table = qualified(schemaName, OPLOG_TABLE)
  }

  /** The table and its index, once per instance (serialized across instances by an advisory lock); retried after a failure. */
  private ensureTable(): Promise<void> {
    this.setup ??= (async () => {
      await this.ready()
      const s = this.session
      await s.transaction(async (c) => {
        await s.run(c, 'head', 'SELECT pg_advisory_xact_lock(hashtext($1))', [`friday.postgres.oplog:${this.schemaName}`])
        await s.run(
          c,
          'put',
          `CREATE TABLE IF NOT EXISTS ${this.table} (
            id text COLLATE "C" PRIMARY KEY,
            at timestamptz NOT NULL,
            op text NOT NULL,
            dataset text,
            outcome text NOT NULL,
            record jsonb NOT NULL
          )`,
        )
        await s.run(c, 'put', `CREATE INDEX IF NOT EXISTS ${ident(`${OPLOG_TABLE}_at`)} ON ${this.table} (at, id)`)
      })
    })().catch((err) => {
      this.setup = null
      throw err
    })
    return this.setup
  }

  async append(records: OpRecord[]): Promise<void> {
    if (records.length === 0) return
    await this.ensureTable()
    const clean = records.map((r) => sanitize(r) as OpRecord)
    try {
      await this.insert(clean)
    } catch (err) {
      if (!isDataError(err) || clean.length === 1) {
        if (isDataError(err)) await this.insertStub(clean[0], err)
        else throw err
        return
      }
      for (const r of clean) {
        try {
          await this.insert([r])
        } catch (one) {
          if (!isDataError(one)) throw one
          await this.insertStub(r, one)
        }
      }
    }
  }

  private async insert(records: OpRecord[]): Promise<void> {
    await this.session.run(
      this.session.pool,
      'put',
      `INSERT INTO ${this.table} (id, at, op, dataset, outcome, record)
       SELECT r->>'id', (r->>'at')::timestamptz, r->>'op', r->>'dataset', r->>'outcome', r
       FROM jsonb_array_elements($1::jsonb) AS r
       ON CONFLICT (id) DO NOTHING`,
      [JSON.stringify(records)],
    )
  }

  /** The record reduced to its identity and outcome, saying why the rest could not be stored. */
  private async insertStub(r: OpRecord, err: unknown): Promise<void> {
    const reason = jsonbSafe(err instanceof Error ? err.message : String(err))
    const stub: OpRecord = {
      id: r.id,
      op: r.op,
      at: typeof r.at === 'string' && !Number.isNaN(Date.parse(r.at)) ? r.at : new Date().toISOString(),
      dataset: r.dataset,
      partitions: [],
      partitionCount: r.partitionCount,
      rows: r.rows,
      bytes: r.bytes,
      durationMs: r.durationMs,
      requests: r.requests,
      retries: r.retries,
      outcome: r.outcome,
      error: r.error ? { code: r.error.code, message: '(not storable)', status: r.error.status } : null,
      details: { storeError: `the record could not be stored in full: ${reason}` },
    }
    try {
      await this.insert([stub])
    } catch (err) {
      if (!isDataError(err)) throw err // refused even so: this one record is lost, the others are not
    }
  }

  async query(q: OpLogQuery): Promise<OpRecord[]> {
    if (q.limit <= 0) return []
    await this.ensureTable()
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())
    const res = await this.session.run(
      this.session.pool,
      'get',
      `SELECT record FROM ${this.table}
       WHERE ($1::timestamptz IS NULL OR at >= $1::timestamptz)
         AND ($2::timestamptz IS NULL OR at < $2::timestamptz)
         AND ($3::text IS NULL OR dataset = $3::text)
         AND ($4::text IS NULL OR op = $4::text)
       ORDER BY at DESC, id DESC
       LIMIT $5`,
      [iso(q.since), iso(q.until), q.dataset ?? null, q.op ?? null, q.limit],
    )
    return res.rows.map((row) => (typeof row.record === 'string' ? JSON.parse(row.record) : row.record) as OpRecord)
  }

  async removeBefore(cutoff: number): Promise<number> {
    await this.ensureTable()
    const res = await this.session.run(this.session.pool, 'delete', `DELETE FROM ${this.table} WHERE at < $1::timestamptz`, [
      new Date(cutoff).toISOString(),
    ])
    return res.rowCount ?? 0
  }
}
