/**
 * The staging table of a bulk write: a temporary table shaped like the dataset's table (so every
 * column has the table's type), dropped when the transaction ends, loaded with a binary
 * `COPY ... FROM STDIN` when the client can (`pg`, Neon) and with `INSERT ... SELECT FROM
 * unnest(...)` statements of `CHUNK_ROWS` rows otherwise. `merge.ts` moves it into the table.
 * A data table the write itself created is empty and private: it is loaded the same way, directly.
 */

import type { Table } from '../../core/types.js'
import { copyBinaryChunks } from './copy-binary.js'
import { canCopy } from './copy-in.js'
import type { PgQueryable } from './pool-types.js'
import type { Session } from './session.js'
import { arrayCast, CHUNK_ROWS, columnParam, ident } from './sql.js'

/** The staging table (in the session's temporary schema). */
export const STAGE = 'pg_temp.friday_stage'

/**
 * Creates the staging table like `dataTable` (columns the batch lacks stay null) and loads
 * `batch` into it (see `loadRows`).
 */
export async function stageBatch(
  session: Session,
  db: PgQueryable,
  dataTable: string,
  batch: Table,
  copy: boolean,
): Promise<'copy' | 'unnest'> {
  await session.run(db, 'put', `CREATE TEMP TABLE friday_stage (LIKE ${dataTable}) ON COMMIT DROP`)
  return loadRows(session, db, STAGE, batch, copy)
}

/**
 * Appends the rows of `batch` to `table` as they are (no conflict handling): one binary COPY when
 * `copy` is set and `db` supports it, else unnest statements. Returns how they were loaded.
 */
export async function loadRows(
  session: Session,
  db: PgQueryable,
  table: string,
  batch: Table,
  copy: boolean,
): Promise<'copy' | 'unnest'> {
  const cols = batch.schema
  const list = cols.map((c) => ident(c.name)).join(', ')
  if (copy && canCopy(db)) {
    const rows = await session.copy(db, `COPY ${table} (${list}) FROM STDIN (FORMAT binary)`, copyBinaryChunks(batch, cols))
    if (rows !== batch.length) throw new Error(`COPY loaded ${rows} rows of ${batch.length}`)
    return 'copy'
  }
  const text = `INSERT INTO ${table} (${list}) SELECT * FROM unnest(${cols.map((c, i) => `$${i + 1}::${arrayCast(c.type)}`).join(', ')})`
  for (let start = 0; start < batch.length; start += CHUNK_ROWS) {
    const end = Math.min(batch.length, start + CHUNK_ROWS)
    await session.run(
      db,
      'put',
      text,
      cols.map((c) => columnParam(batch.columns[c.name], c.type, start, end)),
    )
  }
  return 'unnest'
}
