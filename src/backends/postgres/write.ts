/**
 * The write path of the Postgres backend: one transaction per write, never one statement per
 * row. A batch of at least `bulkRows` rows goes through a staging table (`staging.ts`: binary
 * COPY, or unnest statements when the client cannot COPY) and a few set-based statements
 * (`merge.ts`); a smaller one is sent as `INSERT ... SELECT FROM unnest($1::text[], ...)`
 * statements of up to `CHUNK_ROWS` rows, one round trip for most writes. The first bulk write
 * of a dataset loads its (new, empty) table directly.
 */

import { DuplicateKeyError, SchemaConflictError, ValidationError } from '../../core/errors.js'
import { groupByPartition, type PartitionKey } from '../../core/partitioning.js'
import { assertUniqueKeys, dedupeLastWins, KEY_SCHEMA, sortTable } from '../../core/table.js'
import type { InputColumns, InputRow, PartitionRef, Schema, Table, WriteMode, WriteResult } from '../../core/types.js'
import { checkPartitionCount, DEFAULT_LIMITS, type InputLimits } from '../../table/limits.js'
import { type Normalized, normalizeInput } from '../../table/normalize.js'
import { assertAppendable } from './append-check.js'
import type { Catalog, DatasetRow } from './catalog.js'
import { mergeStaged } from './merge.js'
import { type Partitions, refOfDay } from './partitions.js'
import type { PgQueryable } from './pool-types.js'
import type { Session } from './session.js'
import { arrayCast, CHUNK_ROWS, columnParam, ident, tsParam } from './sql.js'
import { loadRows, stageBatch } from './staging.js'

export { CHUNK_ROWS } from './sql.js'

/** Default `bulkRows`: batches this large are staged and merged; smaller ones are plain statements. */
export const BULK_ROWS = 10_000

export interface WriteContext {
  session: Session
  catalog: Catalog
  partitions: Partitions
  partitionBy: PartitionKey[]
  newCommitId: () => string
  /** Batches of at least this many rows are staged and merged (see the file comment). */
  bulkRows: number
  /** Stage with COPY when the client supports it (false: always unnest statements). */
  copy: boolean
  /** The server has MERGE (PostgreSQL 15+). */
  useMerge: boolean
  /** Columns per dataset and per write, partitions per write (default `DEFAULT_LIMITS`). */
  limits?: InputLimits
}

/** Names of PostgreSQL's system columns: no user column may have them (CREATE/ALTER TABLE fails). */
const SYSTEM_COLUMNS = new Set(['tableoid', 'xmin', 'cmin', 'xmax', 'cmax', 'ctid'])

/**
 * Why PostgreSQL cannot have a column `name`, or null: a system column name, and `oid` on
 * servers before 12 (where it is one too; `serverVersion` 0 = unknown: refused).
 */
export function systemColumnProblem(name: string, serverVersion: number): string | null {
  if (SYSTEM_COLUMNS.has(name) || (name === 'oid' && serverVersion < 120000)) {
    return `'${name}' is the name of a PostgreSQL system column, which a table cannot have: rename the column`
  }
  return null
}

/**
 * Validates the batch against `schema` (null = new dataset); append rejects in-batch duplicates.
 * Everything PostgreSQL would refuse is a ValidationError here, before anything is sent.
 */
export function prepareBatch(
  data: InputRow[] | InputColumns | Table,
  schema: Schema | null,
  mode: WriteMode,
  serverVersion = 0,
  limits: InputLimits = DEFAULT_LIMITS,
  partitionBy?: PartitionKey[],
): Normalized {
  const normalized = normalizeInput(data, schema, limits)
  const t = normalized.table
  if (t.length === 0) return normalized
  // the partitions the batch touches, when the caller knows the partitioning (413 past the limit)
  if (partitionBy) checkPartitionCount(groupByPartition(t, partitionBy).length, limits)
  const names = t.schema.flatMap((c) => {
    const message = systemColumnProblem(c.name, serverVersion)
    return message ? [{ field: c.name, message }] : []
  })
  if (names.length) throw new ValidationError(names)
  for (const c of t.schema) {
    const col = t.columns[c.name]
    if (col.type !== 'string') continue
    for (let i = 0; i < t.length; i++) {
      const v = col.values[i]
      if (v?.includes('\u0000')) {
        throw new ValidationError([
          { row: i, field: c.name, message: 'contains a NUL character, which PostgreSQL text cannot store' },
        ])
      }
    }
  }
  if (mode === 'append') {
    assertUniqueKeys(t)
    return { table: sortTable(t), newColumns: normalized.newColumns }
  }
  return { table: dedupeLastWins(t), newColumns: normalized.newColumns }
}

/**
 * The dataset row for this write, created or widened as needed (`created`: this write created
 * the data table); the batch re-validated if the schema moved.
 */
async function datasetFor(
  ctx: WriteContext,
  db: PgQueryable,
  name: string,
  data: InputRow[] | InputColumns | Table,
  mode: WriteMode,
  prepared: Normalized,
): Promise<{ ds: DatasetRow; batch: Table; created: boolean }> {
  let ds = await ctx.catalog.load(db, name, prepared.newColumns.length ? 'UPDATE' : 'SHARE')
  let created = false
  if (!ds) ({ row: ds, created } = await ctx.catalog.create(db, name, [...KEY_SCHEMA, ...prepared.newColumns], ctx.partitionBy))
  let batch = prepared.table
  const stored = new Map(ds.schema.map((c) => [c.name, c.type]))
  const stale = batch.schema.some((c) => stored.has(c.name) && stored.get(c.name) !== c.type)
  if (stale) batch = prepareBatch(data, ds.schema, mode, ctx.catalog.serverVersion, ctx.limits).table // converts, or throws SchemaConflictError
  for (const c of batch.schema) {
    const type = stored.get(c.name)
    if (type && type !== c.type) throw new SchemaConflictError(c.name, type, c.type)
  }
  const missing = batch.schema.filter((c) => !stored.has(c.name))
  if (missing.length) {
    ds = (await ctx.catalog.load(db, name, 'UPDATE')) ?? ds
    ds = await ctx.catalog.addColumns(db, ds, missing)
  }
  return { ds, batch, created }
}

/** Runs one write in the caller's transaction. */
export async function writeBatch(
  ctx: WriteContext,
  db: PgQueryable,
  name: string,
  data: InputRow[] | InputColumns | Table,
  mode: WriteMode,
  prepared: Normalized,
): Promise<{ result: WriteResult; ds: DatasetRow }> {
  const { ds, batch, created } = await datasetFor(ctx, db, name, data, mode, prepared)
  const groups = groupByPartition(batch, ds.partitionBy).map((g) => g.ref)
  // again against the stored partitioning: a refusal here rolls the whole transaction back
  checkPartitionCount(groups.length, ctx.limits ?? DEFAULT_LIMITS)
  const touched = new Map<string, PartitionRef>(groups.map((r) => [r.path, r]))
  const commitId = ctx.newCommitId()
  const table = ctx.catalog.dataTable(ds)
  const sym = batch.columns.symbol.values as string[]
  const ts = batch.columns.timestamp.values as Float64Array

  if (mode === 'replace') {
    let min = Number.POSITIVE_INFINITY
    let max = Number.NEGATIVE_INFINITY
    for (let i = 0; i < batch.length; i++) {
      if (ts[i] < min) min = ts[i]
      if (ts[i] > max) max = ts[i]
    }
    const symbols = [...new Set(sym)]
    const existing = await ctx.partitions.lockOverlapping(db, ds, symbols, min, max)
    await ctx.partitions.lock(db, ds, [...groups, ...existing])
    const res = await ctx.session.run(
      db,
      'delete',
      `WITH d AS (DELETE FROM ${table} t WHERE t.symbol = ANY($1::text[]) AND t."timestamp" >= $2::timestamptz
                  AND t."timestamp" <= $3::timestamptz RETURNING t.symbol, t."timestamp")
       SELECT symbol, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day FROM d GROUP BY 1, 2`,
      [symbols, tsParam(min), tsParam(max)],
    )
    const deleted = res.rows.map((r) => refOfDay(ds.partitionBy, r.symbol, r.day))
    const unlocked = deleted.filter((r) => !touched.has(r.path) && !existing.some((e) => e.path === r.path))
    await ctx.partitions.lock(db, ds, unlocked) // created by a writer that committed meanwhile
    for (const r of deleted) if (!touched.has(r.path)) touched.set(r.path, r)
  } else {
    await ctx.partitions.lock(db, ds, groups)
  }

  // rows inserted or changed, when known: a write that changes nothing keeps the partitions' stats
  let changed: number | null = null
  try {
    if (batch.length >= ctx.bulkRows && created) {
      // the table is this transaction's own and empty, the batch's keys unique: load it as is
      await loadRows(ctx.session, db, table, batch, ctx.copy)
      changed = batch.length
    } else if (batch.length >= ctx.bulkRows) {
      await stageBatch(ctx.session, db, table, batch, ctx.copy)
      // append: stored keys with other values refuse the batch before anything is written
      if (mode === 'append') await assertAppendable(ctx.session, db, ds, table, batch, true)
      changed = await mergeStaged(ctx.session, db, table, ds, mode, ctx.useMerge)
    } else {
      if (mode === 'append') await assertAppendable(ctx.session, db, ds, table, batch, false)
      const inserted = await insertChunks(ctx, db, table, ds, batch, mode)
      if (mode === 'append') changed = inserted
    }
  } catch (err) {
    if ((err as { details?: { sqlstate?: string } }).details?.sqlstate === '23505') {
      throw new DuplicateKeyError([], 1) // unreachable while partitions are locked; kept as a safety net
    }
    throw err
  }
  // an append whose every key already held its row (a retry of one that landed) changed nothing
  if (mode === 'append' && changed === 0) return { result: { rowsWritten: batch.length, partitions: groups }, ds }

  const refs = [...touched.values()]
  await ctx.partitions.commit(
    db,
    ds,
    refs.map((r) => r.path),
    commitId,
    mode === 'replace' || changed !== 0,
  )
  return { result: { rowsWritten: batch.length, partitions: refs }, ds }
}

/**
 * The batch as `INSERT ... SELECT FROM unnest(...)` statements of `CHUNK_ROWS` rows; returns the
 * rows the statements reported. Upsert: ON CONFLICT updates. Append: ON CONFLICT does nothing
 * (`assertAppendable` has made sure a stored key holds exactly the batch's row).
 */
async function insertChunks(
  ctx: WriteContext,
  db: PgQueryable,
  table: string,
  ds: DatasetRow,
  batch: Table,
  mode: WriteMode,
): Promise<number> {
  const cols = batch.schema
  const dataCols = ds.schema.filter((c) => c.name !== 'symbol' && c.name !== 'timestamp')
  const conflict =
    mode === 'upsert'
      ? dataCols.length
        ? ` ON CONFLICT (symbol, "timestamp") DO UPDATE SET ${dataCols.map((c) => `${ident(c.name)} = EXCLUDED.${ident(c.name)}`).join(', ')}`
        : ' ON CONFLICT (symbol, "timestamp") DO NOTHING'
      : mode === 'append'
        ? ' ON CONFLICT (symbol, "timestamp") DO NOTHING'
        : ''
  let rows = 0
  const text = `INSERT INTO ${table} (${cols.map((c) => ident(c.name)).join(', ')})
    SELECT * FROM unnest(${cols.map((c, i) => `$${i + 1}::${arrayCast(c.type)}`).join(', ')})${conflict}`
  for (let start = 0; start < batch.length; start += CHUNK_ROWS) {
    const end = Math.min(batch.length, start + CHUNK_ROWS)
    const values = cols.map((c) => columnParam(batch.columns[c.name], c.type, start, end))
    rows += (await ctx.session.run(db, 'put', text, values)).rowCount ?? 0
  }
  return rows
}
