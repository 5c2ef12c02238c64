/**
 * The key check of `append` on PostgreSQL: a stored key is a conflict only when its row differs
 * from the batch's row for that key; a key already holding exactly the batch's row (a retried
 * append whose first outcome was unknown) is no conflict and is left as it is. Values are
 * compared exactly: NULL equals NULL, float64 by its 8 bytes (-0 is not 0), int64, strings,
 * booleans, and timestamps to the microsecond; a column of the dataset that the batch lacks is
 * NULL in the batch. The check runs in the write's transaction, with the locks of every
 * partition the batch touches held, so no other writer changes those keys before the insert.
 * (Earlier versions recognized retries by fingerprint in `friday_appends`; that table is no
 * longer read or written, and an existing one is left alone.)
 */

import { DuplicateKeyError } from '../../core/errors.js'
import { formatUs } from '../../core/time.js'
import type { Table } from '../../core/types.js'
import type { DatasetRow } from './catalog.js'
import type { PgQueryable } from './pool-types.js'
import type { Session } from './session.js'
import { arrayCast, CHUNK_ROWS, columnParam, ident, usOf } from './sql.js'
import { STAGE } from './staging.js'

/** Conflicting keys listed in the error, at most. */
const MAX_KEYS = 100

const SAME_KEY = 't.symbol = k.symbol AND t."timestamp" = k."timestamp"'

/** A value as compared: float64 by its bytes (-0 is not 0), the others by their value. */
function compared(expr: string, type: string): string {
  return type === 'float64' ? `float8send(${expr})` : expr
}

/**
 * SQL condition: the stored row `t` differs from the incoming row `k` in some data column.
 * `given(name)`: whether `k` has the column (a column it lacks is NULL).
 */
function differs(ds: DatasetRow, given: (name: string) => boolean): string {
  const data = ds.schema.filter((c) => c.name !== 'symbol' && c.name !== 'timestamp')
  if (!data.length) return 'false' // only key columns: a stored key holds exactly the row
  const stored = data.map((c) => compared(`t.${ident(c.name)}`, c.type))
  const incoming = data.map((c) => (given(c.name) ? compared(`k.${ident(c.name)}`, c.type) : 'NULL'))
  return `ROW(${stored.join(', ')}) IS DISTINCT FROM ROW(${incoming.join(', ')})`
}

/**
 * Throws `DuplicateKeyError` listing (up to 100 of) the keys of `batch` stored in `table` with
 * other values; returns when there are none. `staged`: the batch is in the staging table
 * (`staging.ts`), else it is sent as array parameters in chunks of `CHUNK_ROWS` rows.
 */
export async function assertAppendable(
  session: Session,
  db: PgQueryable,
  ds: DatasetRow,
  table: string,
  batch: Table,
  staged: boolean,
): Promise<void> {
  const select = `SELECT t.symbol, ${usOf('t."timestamp"')} AS us, count(*) OVER () AS total`
  const order = `ORDER BY t.symbol, t."timestamp" LIMIT ${MAX_KEYS}`
  const keys: { symbol: string; timestamp: string }[] = []
  let total = 0
  const collect = (rows: any[]) => {
    if (rows.length) total += Number(rows[0].total)
    for (const r of rows) if (keys.length < MAX_KEYS) keys.push({ symbol: r.symbol, timestamp: formatUs(Number(r.us)) })
  }
  if (staged) {
    const res = await session.run(
      db,
      'get',
      `${select} FROM ${table} t JOIN ${STAGE} k ON ${SAME_KEY} WHERE ${differs(ds, () => true)} ${order}`,
    )
    collect(res.rows)
  } else {
    const cols = batch.schema
    const inBatch = new Set(cols.map((c) => c.name))
    const text = `${select} FROM ${table} t
      JOIN unnest(${cols.map((c, i) => `$${i + 1}::${arrayCast(c.type)}`).join(', ')}) AS k(${cols.map((c) => ident(c.name)).join(', ')})
      ON ${SAME_KEY} WHERE ${differs(ds, (name) => inBatch.has(name))} ${order}`
    for (let start = 0; start < batch.length; start += CHUNK_ROWS) {
      const end = Math.min(batch.length, start + CHUNK_ROWS)
      const res = await session.run(
        db,
        'get',
        text,
        cols.map((c) => columnParam(batch.columns[c.name], c.type, start, end)),
      )
      collect(res.rows)
    }
  }
  if (total) throw new DuplicateKeyError(keys, total)
}
