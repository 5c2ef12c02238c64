/**
 * Dataset and partition metadata in MongoDB. Every update is optimistic (`version` compare and
 * set on `_id`), so concurrent writers never lose a schema change or a partition commit, and a
 * partition's stats are always recomputed from its rows, never incremented.
 *
 * Write intents: before touching a partition's rows a writer adds its write id to the
 * partition's `pending` list (creating a version-0 placeholder for a new partition) and removes
 * it in its commit. Readers of the catalog (`settlePartitions`) recompute the stats of a
 * partition with pending intents from its rows, so `describe` and friends agree with what is
 * stored even while a write runs or after a writer died between its rows and its commit. Intents
 * older than `STALE_INTENT_MS` (by their ULID's time) are dropped by the next commit of the
 * partition: that commit recomputes the stats from the rows, whatever the dead writer left.
 */

import { createHash } from 'node:crypto'
import type { Filter } from 'mongodb'
import { decodeTime } from 'ulid'
import { columnStats, distinctSymbols } from '../../core/column-stats.js'
import { CommitConflictError } from '../../core/errors.js'
import { newId } from '../../core/ids.js'
import { type PartitionKey, timeRangeOf } from '../../core/partitioning.js'
import { KEY_SCHEMA, sortTable, timeRange } from '../../core/table.js'
import type { ColumnSchema, ColumnStats, PartitionRef, Schema, Table } from '../../core/types.js'
import {
  backoff,
  countRead,
  countWritten,
  DATASETS,
  isDuplicateKey,
  type MongoContext,
  PARTITIONS,
  rowsCollection,
} from './context.js'
import { metaId, projectionOf, type RowDoc, TableBuilder } from './documents.js'
import { mongo } from './mongo-driver.js'

export interface DatasetMeta {
  name: string
  /** Grows by one per schema change. */
  version: number
  partitionBy: PartitionKey[]
  schema: Schema
  createdAt: string
  committedAt: string
}

export interface PartitionStats {
  rows: number
  /** BSON bytes of the partition's documents as the server returns them. */
  bytes: number
  minTs: number | null
  maxTs: number | null
  /** `sha256:<hex>` over the partition's rows in (symbol, timestamp) order (see `tableChecksum`). */
  checksum: string
  symbols: string[]
  columns: Record<string, ColumnStats>
}

export interface PartitionMeta extends PartitionStats {
  dataset: string
  path: string
  values: Record<string, string>
  /** Starts at 1; +1 per commit. */
  version: number
  commitId: string
  committedAt: string
  schema: Schema
  /** Ids (ULIDs) of writes that may have changed the rows since this version (see the module doc). */
  pending?: string[]
}

const MAX_ATTEMPTS = 50
/** A write intent older than this belongs to a writer that died; the next commit drops it. */
export const STALE_INTENT_MS = 60 * 60 * 1000

const datasetId = (name: string) => metaId('dataset', name)
const partitionId = (ds: string, path: string) => metaId('partition', ds, path)

export async function loadDataset(ctx: MongoContext, name: string): Promise<DatasetMeta | null> {
  ctx.stats.get++
  const doc = await ctx.db
    .collection<DatasetMeta>(DATASETS)
    .findOne({ _id: datasetId(name), name } as Filter<DatasetMeta>, { projection: { _id: 0 } })
  if (doc) countRead(ctx, [doc])
  return doc
}

export async function listDatasetNames(ctx: MongoContext): Promise<string[]> {
  ctx.stats.list++
  const docs = await ctx.db
    .collection<DatasetMeta>(DATASETS)
    .find({}, { projection: { _id: 0, name: 1 } })
    .toArray()
  countRead(ctx, docs)
  return docs.map((d) => d.name).sort()
}

/**
 * Creates the dataset or appends `newColumns` to its schema, if `current` is still the stored
 * version. Returns the new descriptor, or null when another writer got there first (re-read,
 * re-validate, retry).
 */
export async function commitSchema(
  ctx: MongoContext,
  name: string,
  current: DatasetMeta | null,
  partitionBy: PartitionKey[],
  newColumns: ColumnSchema[],
): Promise<DatasetMeta | null> {
  const col = ctx.db.collection<DatasetMeta>(DATASETS)
  const now = new Date().toISOString()
  ctx.stats.put++
  if (!current) {
    const doc: DatasetMeta = {
      name,
      version: 1,
      partitionBy,
      schema: [...KEY_SCHEMA, ...newColumns],
      createdAt: now,
      committedAt: now,
    }
    countWritten(ctx, [doc])
    try {
      await col.insertOne({ _id: datasetId(name), ...doc } as DatasetMeta)
      return doc
    } catch (err) {
      if (isDuplicateKey(err)) return null
      throw err
    }
  }
  const next: DatasetMeta = {
    ...current,
    version: current.version + 1,
    schema: [...current.schema, ...newColumns],
    committedAt: now,
  }
  countWritten(ctx, [next])
  const res = await col.updateOne({ _id: datasetId(name), name, version: current.version } as Filter<DatasetMeta>, {
    $set: { version: next.version, schema: next.schema, committedAt: now },
  })
  return res.matchedCount === 1 ? next : null
}

/** The query selecting the rows of one partition. */
export function partitionQuery(values: Record<string, string>): Filter<RowDoc> {
  const q: Filter<RowDoc> = {}
  if (values.symbol !== undefined) q.symbol = values.symbol
  const [start, end] = timeRangeOf(values)
  if (Number.isFinite(start)) q.t = { $gte: start, $lt: end }
  return q
}

/** Reads a partition's rows and summarizes them (rows, bytes, time range, checksum, column stats). */
export async function partitionStats(ctx: MongoContext, ds: string, ref: PartitionRef, schema: Schema): Promise<PartitionStats> {
  ctx.stats.get++
  const docs = await ctx.db
    .collection<RowDoc>(rowsCollection(ds))
    .find(partitionQuery(ref.values), { projection: projectionOf(schema), useBigInt64: true })
    .toArray()
  const builder = new TableBuilder(schema, docs.length)
  let bytes = 0
  const { BSON } = mongo()
  for (const d of docs) {
    builder.push(d)
    bytes += BSON.calculateObjectSize(d)
  }
  ctx.stats.bytesRead += bytes
  // sort here, not on the server: the order must be JavaScript code-unit order whatever the server's collation
  const table = sortTable(builder.build())
  const { min, max } = table.length ? timeRange(table) : { min: null, max: null }
  return {
    rows: table.length,
    bytes,
    minTs: min,
    maxTs: max,
    checksum: tableChecksum(table),
    symbols: distinctSymbols(table),
    columns: table.length ? boundedStats(columnStats(table)) : {},
  }
}

/** Longest string min/max kept in a partition document (UTF-16 units). */
export const MAX_STAT_CHARS = 1024

/**
 * Column stats as a partition document holds them: a string min longer than `MAX_STAT_CHARS`
 * becomes its prefix (still a lower bound), a longer max becomes null (unknown). Whole values
 * would put two copies of the partition's longest texts in one document, past MongoDB's 16 MiB
 * limit for rows that fit it, failing the write's metadata commit after its rows were stored.
 */
function boundedStats(stats: Record<string, ColumnStats>): Record<string, ColumnStats> {
  for (const s of Object.values(stats)) {
    if (typeof s.min === 'string' && s.min.length > MAX_STAT_CHARS) {
      const cut = /[\ud800-\udbff]/.test(s.min[MAX_STAT_CHARS - 1]) ? MAX_STAT_CHARS - 1 : MAX_STAT_CHARS // no half pair
      s.min = s.min.slice(0, cut)
    }
    if (typeof s.max === 'string' && s.max.length > MAX_STAT_CHARS) s.max = null
  }
  return stats
}

/**
 * SHA-256 over the table's key columns and every data column that has a value in some row, in
 * schema order (all-null columns are skipped, so adding a column to the dataset does not change
 * the checksum of partitions that never had it).
 */
export function tableChecksum(table: Table): string {
  const h = createHash('sha256')
  h.update(JSON.stringify(table.columns.symbol.values))
  for (const c of table.schema.slice(1)) {
    const col = table.columns[c.name]
    if (c.name !== 'timestamp' && allNull(table, c.name)) continue
    h.update(`\u0000${c.name}:${c.type}\u0000`)
    if (col.type === 'string') h.update(JSON.stringify(col.values))
    else {
      h.update(new Uint8Array(col.values.buffer, col.values.byteOffset, col.values.byteLength))
      if (col.type === 'int64') h.update(col.nulls ?? new Uint8Array(table.length))
    }
  }
  return `sha256:${h.digest('hex')}`
}

function allNull(table: Table, name: string): boolean {
  const col = table.columns[name]
  for (let i = 0; i < table.length; i++) {
    switch (col.type) {
      case 'float64':
      case 'timestamp':
        if (col.values[i] === col.values[i]) return false
        break
      case 'int64':
        if (col.nulls?.[i] !== 1) return false
        break
      case 'boolean':
        if (col.values[i] !== 255) return false
        break
      case 'string':
        if (col.values[i] !== null) return false
        break
    }
  }
  return true
}

export async function loadPartition(ctx: MongoContext, ds: string, path: string): Promise<PartitionMeta | null> {
  ctx.stats.get++
  const doc = await ctx.db
    .collection<PartitionMeta>(PARTITIONS)
    .findOne({ _id: partitionId(ds, path), dataset: ds, path } as Filter<PartitionMeta>, { projection: { _id: 0 } })
  if (doc) countRead(ctx, [doc])
  return doc
}

/**
 * Partition documents of a dataset overlapping the filter (non-empty ones; all with
 * `withEmpty`), sorted by path, without their column stats and schema, as committed. Partitions
 * with pending write intents are included whatever their committed stats (`settlePartitions`
 * recomputes them).
 */
export async function loadPartitions(
  ctx: MongoContext,
  ds: string,
  f: { symbols: Set<string> | null; start: number; end: number },
  withEmpty = false,
): Promise<PartitionMeta[]> {
  ctx.stats.list++
  let q: Filter<PartitionMeta> = { dataset: ds }
  if (!withEmpty) {
    const committed: Filter<PartitionMeta> = { rows: { $gt: 0 } }
    if (f.symbols) committed.symbols = { $in: [...f.symbols] }
    if (Number.isFinite(f.start)) committed.maxTs = { $gte: f.start }
    if (Number.isFinite(f.end)) committed.minTs = { $lt: f.end }
    q = { dataset: ds, $or: [committed, { 'pending.0': { $exists: true } }] } as Filter<PartitionMeta>
  }
  const docs = await ctx.db
    .collection<PartitionMeta>(PARTITIONS)
    .find(q, { projection: { _id: 0, columns: 0, schema: 0 } })
    .toArray()
  countRead(ctx, docs)
  return docs.filter((m) => hasPending(m) || overlaps(m, f, withEmpty)).sort(byPath)
}

const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)

function overlaps(m: PartitionMeta, f: { symbols: Set<string> | null; start: number; end: number }, withEmpty: boolean): boolean {
  if (m.rows === 0 || m.minTs === null || m.maxTs === null) return withEmpty
  if (m.maxTs < f.start || m.minTs >= f.end) return false
  return !f.symbols || m.symbols.some((s) => f.symbols!.has(s))
}

export function hasPending(m: PartitionMeta): boolean {
  return Array.isArray(m.pending) && m.pending.length > 0
}

/**
 * The partitions as stored now: those with pending write intents get stats recomputed from their
 * rows (not committed), then the filter applies again. Without pending intents: `parts` as is.
 */
export async function settlePartitions(
  ctx: MongoContext,
  ds: string,
  schema: Schema,
  parts: PartitionMeta[],
  f: { symbols: Set<string> | null; start: number; end: number },
  withEmpty = false,
): Promise<PartitionMeta[]> {
  const out: PartitionMeta[] = []
  for (const m of parts) {
    if (!hasPending(m)) {
      out.push(m)
      continue
    }
    const stats = await partitionStats(ctx, ds, { values: m.values, path: m.path }, schema)
    const settled = { ...m, ...stats }
    if (overlaps(settled, f, withEmpty)) out.push(settled)
  }
  return out
}

/**
 * Records write intent `writeId` on each partition before its rows are touched (a version-0
 * placeholder for a partition without a document yet).
 */
export async function markPending(
  ctx: MongoContext,
  ds: string,
  refs: PartitionRef[],
  writeId: string,
  schema: Schema,
): Promise<void> {
  const col = ctx.db.collection<PartitionMeta>(PARTITIONS)
  for (const ref of refs) {
    const id = partitionId(ds, ref.path)
    for (let attempt = 0; ; attempt++) {
      ctx.stats.put++
      const res = await col.updateOne({ _id: id, dataset: ds, path: ref.path } as Filter<PartitionMeta>, {
        $push: { pending: writeId },
      })
      if (res.matchedCount === 1) break
      if (attempt >= 2) throw new CommitConflictError(`${ds}/${ref.path}`, attempt + 1)
      const placeholder: PartitionMeta = {
        dataset: ds,
        path: ref.path,
        values: ref.values,
        version: 0,
        commitId: writeId,
        committedAt: new Date().toISOString(),
        schema,
        rows: 0,
        bytes: 0,
        minTs: null,
        maxTs: null,
        checksum: '',
        symbols: [],
        columns: {},
        pending: [writeId],
      }
      ctx.stats.put++
      countWritten(ctx, [placeholder])
      try {
        await col.insertOne({ _id: id, ...placeholder } as PartitionMeta)
        break
      } catch (err) {
        if (!isDuplicateKey(err)) throw err // else: created meanwhile, push onto it
      }
    }
  }
}

/** The intents a commit removes: its own and those of writers that died (older than `staleMs`). */
function intentsToDrop(current: PartitionMeta | null, writeId: string | undefined, staleMs: number): string[] {
  const now = Date.now()
  const drop = (current?.pending ?? []).filter((p) => p === writeId || now - safeTime(p) >= staleMs)
  if (writeId && !drop.includes(writeId)) drop.push(writeId)
  return drop
}

function safeTime(id: string): number {
  try {
    return decodeTime(id)
  } catch {
    return 0
  }
}

/**
 * Recomputes a partition's stats from its rows and commits them as a new version, unless they
 * are unchanged and `force` is false. Optimistic: the commit applies only if the version read
 * first is still current; otherwise everything (schema, stats) is re-read and the commit
 * retried. So the last commit always reflects every row write that finished before it.
 * Returns whether this call committed a version.
 */
export async function refreshPartition(
  ctx: MongoContext,
  ds: string,
  ref: PartitionRef,
  force: boolean,
  writeId?: string,
  staleMs = STALE_INTENT_MS,
): Promise<boolean> {
  const col = ctx.db.collection<PartitionMeta>(PARTITIONS)
  const id = partitionId(ds, ref.path)
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) await backoff(attempt)
    const current = await loadPartition(ctx, ds, ref.path)
    const dataset = await loadDataset(ctx, ds) // fresh: a concurrent writer may have added columns
    if (!dataset) return false
    const stats = await partitionStats(ctx, ds, ref, dataset.schema)
    const drop = intentsToDrop(current, writeId, staleMs)
    if (!force) {
      // a placeholder (version 0, see markPending) whose partition got no rows stays uncommitted
      const unchanged =
        !current || current.version === 0 ? stats.rows === 0 : current.rows === stats.rows && current.checksum === stats.checksum
      if (unchanged) {
        if (current && drop.some((p) => current.pending?.includes(p))) await dropIntents(ctx, ds, ref.path, drop)
        return false
      }
    }
    const next: PartitionMeta = {
      dataset: ds,
      path: ref.path,
      values: ref.values,
      version: (current?.version ?? 0) + 1,
      commitId: newId(),
      committedAt: new Date().toISOString(),
      schema: dataset.schema,
      ...stats,
    }
    ctx.stats.put++
    countWritten(ctx, [next])
    if (!current) {
      try {
        await col.insertOne({ _id: id, ...next } as PartitionMeta)
        return true
      } catch (err) {
        if (isDuplicateKey(err)) continue
        throw err
      }
    }
    const res = await col.updateOne({ _id: id, dataset: ds, path: ref.path, version: current.version } as Filter<PartitionMeta>, {
      $set: next,
      ...(drop.length ? { $pullAll: { pending: drop } } : {}),
    })
    if (res.matchedCount === 1) return true
  }
  throw new CommitConflictError(`${ds}/${ref.path}`, MAX_ATTEMPTS)
}

async function dropIntents(ctx: MongoContext, ds: string, path: string, ids: string[]): Promise<void> {
  ctx.stats.put++
  await ctx.db
    .collection<PartitionMeta>(PARTITIONS)
    .updateOne({ _id: partitionId(ds, path), dataset: ds, path } as Filter<PartitionMeta>, { $pullAll: { pending: ids } })
}

/**
 * The partitions of `ds` holding a write intent at least `staleMs` old: left by a writer that
 * died between its rows and its metadata commit (or one still running that long). `gc()` and
 * `maintain()` settle them with `refreshPartition(..., staleMs)`: stats recomputed from the rows
 * and committed, stale intents dropped, so `verify()` agrees with the rows again.
 */
export async function partitionsWithStaleIntents(ctx: MongoContext, ds: string, staleMs: number): Promise<PartitionRef[]> {
  ctx.stats.list++
  const docs = await ctx.db
    .collection<PartitionMeta>(PARTITIONS)
    .find({ dataset: ds, 'pending.0': { $exists: true } } as Filter<PartitionMeta>, {
      projection: { _id: 0, path: 1, values: 1, pending: 1 },
    })
    .toArray()
  countRead(ctx, docs)
  const now = Date.now()
  return docs
    .filter((m) => (m.pending ?? []).some((p) => now - safeTime(p) >= staleMs))
    .map((m) => ({ values: m.values, path: m.path }))
    .sort(byPath)
}
