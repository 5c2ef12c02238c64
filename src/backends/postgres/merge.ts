/**
 * Moving a staged batch (`staging.ts`) into the dataset's table with set-based statements, per
 * write mode. `upsert`: stored rows whose values differ are updated (a row sent again unchanged
 * is left alone; float64 compared bit for bit, so -0 replaces 0) and new keys inserted, with one
 * `MERGE` (PostgreSQL 15+: one join of batch and table) or else an UPDATE then an INSERT of the
 * keys not stored. `append`: one INSERT of the keys not stored (the caller has refused the batch
 * if a stored key holds other values: `append-check.ts`). `replace`: one INSERT (the caller has
 * deleted the range). The writer holds the locks of every partition the batch touches, so no
 * other writer inserts these keys meanwhile.
 */

import type { WriteMode } from '../../core/types.js'
import type { DatasetRow } from './catalog.js'
import type { PgQueryable } from './pool-types.js'
import type { Session } from './session.js'
import { ident } from './sql.js'
import { STAGE } from './staging.js'

const SAME_KEY = 't.symbol = s.symbol AND t."timestamp" = s."timestamp"'

/** A value as compared for "did it change": float64 by its bytes (-0 is not 0), others by equality. */
function compared(alias: string, name: string, type: string): string {
  return type === 'float64' ? `float8send(${alias}.${ident(name)})` : `${alias}.${ident(name)}`
}

/** PostgreSQL 15 (`server_version_num`) brought MERGE. */
export const MERGE_SINCE = 150_000

/**
 * Merges the staged rows into `table` (the data table of `ds`); returns the rows inserted or
 * changed. `useMerge`: the server has MERGE.
 */
export async function mergeStaged(
  session: Session,
  db: PgQueryable,
  table: string,
  ds: DatasetRow,
  mode: WriteMode,
  useMerge: boolean,
): Promise<number> {
  const names = ds.schema.map((c) => ident(c.name))
  const cols = names.join(', ')
  const staged = names.map((n) => `s.${n}`).join(', ')
  if (mode !== 'upsert') {
    const skip = mode === 'append' ? ' ON CONFLICT (symbol, "timestamp") DO NOTHING' : ''
    const res = await session.run(db, 'put', `INSERT INTO ${table} (${cols}) SELECT ${staged} FROM ${STAGE} AS s${skip}`)
    return res.rowCount ?? 0
  }
  const data = ds.schema.filter((c) => c.name !== 'symbol' && c.name !== 'timestamp')
  const set = data.map((c) => `${ident(c.name)} = s.${ident(c.name)}`).join(', ')
  const differs = `(${data.map((c) => compared('t', c.name, c.type)).join(', ')}) IS DISTINCT FROM (${data.map((c) => compared('s', c.name, c.type)).join(', ')})`
  if (useMerge) {
    const res = await session.run(
      db,
      'put',
      `MERGE INTO ${table} AS t USING ${STAGE} AS s ON ${SAME_KEY}
       ${data.length ? `WHEN MATCHED AND ${differs} THEN UPDATE SET ${set}` : ''}
       WHEN NOT MATCHED THEN INSERT (${cols}) VALUES (${staged})`,
    )
    return res.rowCount ?? 0
  }
  let changed = 0
  if (data.length) {
    const res = await session.run(
      db,
      'put',
      `UPDATE ${table} AS t SET ${set} FROM ${STAGE} AS s WHERE ${SAME_KEY} AND ${differs}`,
    )
    changed += res.rowCount ?? 0
  }
  const res = await session.run(
    db,
    'put',
    `INSERT INTO ${table} (${cols}) SELECT ${staged} FROM ${STAGE} AS s
     WHERE NOT EXISTS (SELECT 1 FROM ${table} AS t WHERE ${SAME_KEY})`,
  )
  return changed + (res.rowCount ?? 0)
}
