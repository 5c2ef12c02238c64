/**
 * `DataStorage` on MongoDB (Node and Bun only: the official driver needs `node:net`/`node:tls`
 * and does not run on Cloudflare Workers).
 *
 * Layout (database `db`): `ds_<dataset>` holds one document per row (see `documents.ts`) with
 * an index on `{ symbol: 1, t: 1 }`; `friday_datasets` one document per dataset (partitioning
 * and schema: the source of truth for column types); `friday_partitions` one document per
 * partition (symbol + UTC date by default, as in the lake): version, rows, time range, column
 * stats and a checksum of its rows.
 *
 * A write: validate the whole batch; commit new columns to the dataset document
 * (compare-and-set on its version); write the rows (bulk, unordered, 1,000 per batch); then
 * recompute each touched partition's stats from its rows and commit them as a new version
 * (compare-and-set again). There are no multi-document transactions (CongoDB has none, and a
 * row write does not need one: uniqueness rests on `_id`), so a reader can observe:
 * - rows of a write before its partition metadata is updated (reads query rows, not metadata);
 *   `describe`/`listPartitions`/`getManifest` catch up when the writer's commit lands;
 * - within a batch of 1,000 rows, some rows before others (a batch is not atomic), and a write
 *   spanning batches or partitions partly. An upsert can simply be re-sent.
 * A writer that dies between its row write and its metadata commit leaves rows that the
 * metadata does not count yet: `verify()` reports them (row-count/checksum mismatch) and the
 * next write to that partition recomputes its stats. Concurrent writers lose nothing: the
 * last metadata commit of a partition is always computed after every finished row write.
 */

import type { MongoClient } from 'mongodb'
import pLimit from 'p-limit'
import { ClosedError, CommitConflictError, ConfigError, ValidationError } from '../../errors.js'
import { checkDatasetName } from '../../keys.js'
import type { PartitionKey } from '../../lake/options.js'
import { checkPartitionBy, groupByPartition, parsePath, pathOf } from '../../lake/partitioning.js'
import type { OpLogStore } from '../../oplog/types.js'
import { normalizeInput } from '../../table/normalize.js'
import { assertUniqueKeys, dedupeLastWins, emptyTable, KEY_SCHEMA, sortTable, timeRange } from '../../table/table.js'
import type {
  DataStorage,
  DatasetDescription,
  DeleteOptions,
  DeleteResult,
  GcReport,
  InputColumns,
  InputRow,
  PartitionFilter,
  PartitionInfo,
  PartitionManifest,
  PartitionRef,
  ReadOptions,
  ScanOptions,
  StoreRequestStats,
  Table,
  VerifyReport,
  WriteOptions,
  WriteResult,
} from '../../types.js'
import {
  commitSchema,
  type DatasetMeta,
  listDatasetNames,
  loadDataset,
  loadPartition,
  loadPartitions,
  refreshPartition,
} from './catalog.js'
import { emptyStats, type MongoContext, PARTITIONS, rowsCollection } from './context.js'
import type { RowDoc } from './documents.js'
import { MongoOpLogStore } from './oplog-store.js'
import { projectSchema, rowFilter, rowQuery } from './query.js'
import { readAll, readLimited, scanRows } from './reads.js'
import { verifyDatasets } from './verify.js'
import { describeDataset, partitionInfo, toManifest } from './views.js'
import { assertNoExistingKeys, insertRows, keyedDocs, upsertRows } from './writes.js'

export interface MongoStorageOptions {
  /**
   * A connected or unconnected `MongoClient`, or a factory for one (called lazily at first use;
   * a failed call is retried at the next).
   */
  client: MongoClient | (() => MongoClient | Promise<MongoClient>)
  /** Database name. */
  db: string
  /** Name reported by `storage.backend` (default `mongodb`). */
  backend?: string
  /** Partitioning of new datasets (default `['symbol', 'date']`); a dataset keeps the one it was created with. */
  partitionBy?: PartitionKey[]
  /** Close the client in `close()`: default true for a factory (the storage owns it), false for a client passed in. */
  closeClient?: boolean
  /** Partitions whose metadata one write recomputes concurrently (default 8). */
  concurrency?: number
}

const WRITE_MODES = ['upsert', 'append', 'replace']
const DB_NAME_RE = /^[^/\\. "$*<>:|?\u0000]{1,63}$/

/** Validates the options once; the client is created/connected lazily. */
export function createMongoStorage(options: MongoStorageOptions): DataStorage {
  const issues: { path: string; message: string }[] = []
  const o = (options ?? {}) as Partial<MongoStorageOptions>
  if (typeof o.client !== 'function' && (typeof o.client !== 'object' || o.client === null))
    issues.push({ path: 'client', message: 'expected a MongoClient or a function returning one' })
  if (typeof o.db !== 'string' || !DB_NAME_RE.test(o.db))
    issues.push({
      path: 'db',
      message: `expected a MongoDB database name (1-63 characters, none of /\\. "$*<>:|?), got ${JSON.stringify(o.db)}`,
    })
  if (issues.length) throw new ConfigError(`mongodb: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues)
  return new MongoStorage(options)
}

export class MongoStorage implements DataStorage {
  readonly backend: string
  private readonly partitionBy: PartitionKey[]
  private readonly stats = emptyStats()
  private readonly indexed = new Set<string>()
  private readonly concurrency: number
  private ctx: Promise<MongoContext> | null = null
  private client: MongoClient | null = null
  private closed = false

  constructor(private readonly options: MongoStorageOptions) {
    this.backend = options.backend ?? 'mongodb'
    this.partitionBy = checkPartitionBy(options.partitionBy ?? ['symbol', 'date'])
    this.concurrency = options.concurrency ?? 8
  }

  // ---- lifecycle -------------------------------------------------------------------------

  private context(): Promise<MongoContext> {
    if (this.closed) throw new ClosedError()
    this.ctx ??= (async () => {
      const c = this.options.client
      const client = typeof c === 'function' ? await c() : c
      this.client = client
      try {
        await client.connect()
      } catch (err) {
        if (this.ownsClient()) await client.close().catch(() => undefined)
        this.client = null
        throw err
      }
      return { db: client.db(this.options.db), stats: this.stats }
    })().catch((err) => {
      this.ctx = null // the next call retries
      throw err
    })
    return this.ctx
  }

  private ownsClient(): boolean {
    return this.options.closeClient ?? typeof this.options.client === 'function'
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const pending = this.ctx
    this.ctx = null
    if (pending && this.ownsClient()) {
      await pending.catch(() => undefined)
      await this.client?.close()
    }
  }

  requestStats(): StoreRequestStats {
    return { ...this.stats }
  }

  /** The op log's collection in this database, through this storage's client (see `oplog-store.ts`). */
  opLogStore(): OpLogStore {
    return new MongoOpLogStore(() => this.context())
  }

  private rows(ctx: MongoContext, ds: string) {
    return ctx.db.collection<RowDoc>(rowsCollection(ds))
  }

  /** Creates the indexes once per storage (idempotent on the server). */
  private async ensureIndexes(ctx: MongoContext, ds: string, partitionBy: PartitionKey[]): Promise<void> {
    if (!this.indexed.has(PARTITIONS)) {
      ctx.stats.put++
      await ctx.db.collection(PARTITIONS).createIndex({ dataset: 1, path: 1 })
      this.indexed.add(PARTITIONS)
    }
    if (this.indexed.has(ds)) return
    ctx.stats.put++
    await this.rows(ctx, ds).createIndex({ symbol: 1, t: 1 })
    if (!partitionBy.includes('symbol')) {
      ctx.stats.put++
      await this.rows(ctx, ds).createIndex({ t: 1 })
    }
    this.indexed.add(ds)
  }

  // ---- writes ----------------------------------------------------------------------------

  async write(dataset: string, data: InputRow[] | InputColumns | Table, options: WriteOptions = {}): Promise<WriteResult> {
    const ds = checkDatasetName(dataset)
    const mode = options.mode ?? 'upsert'
    if (!WRITE_MODES.includes(mode)) {
      throw new ValidationError([
        { field: 'mode', message: `expected one of ${WRITE_MODES.join(', ')}, got ${JSON.stringify(mode)}` },
      ])
    }
    const ctx = await this.context()
    // validate everything before the first byte is written
    let meta = await loadDataset(ctx, ds)
    let { table, newColumns } = normalizeInput(data, meta?.schema ?? null)
    if (table.length === 0) return { rowsWritten: 0, partitions: [] }
    if (mode === 'append') {
      assertUniqueKeys(table)
    }
    // new dataset or new columns: compare-and-set on the dataset document, re-validating on a lost race
    for (let attempt = 0; !meta || newColumns.length; attempt++) {
      if (attempt >= 30) throw new CommitConflictError(`${ds}/schema`, attempt)
      const committed: DatasetMeta | null = await commitSchema(ctx, ds, meta, this.partitionBy, newColumns)
      if (committed) {
        meta = committed
        break
      }
      meta = await loadDataset(ctx, ds)
      ;({ table, newColumns } = normalizeInput(data, meta?.schema ?? null))
    }
    const partitionBy = meta.partitionBy
    const batch = mode === 'append' ? sortTable(table) : dedupeLastWins(table)
    const refs = groupByPartition(batch, partitionBy).map((g) => g.ref)
    const col = this.rows(ctx, ds)
    await this.ensureIndexes(ctx, ds, partitionBy)
    const docs = keyedDocs(batch)
    let touched = refs
    if (mode === 'append') {
      await assertNoExistingKeys(ctx, col, docs)
      try {
        await insertRows(ctx, col, docs)
      } catch (err) {
        await this.refresh(ctx, ds, refs, false) // a concurrent refresh may have seen rows rolled back since
        throw err
      }
    } else {
      if (mode === 'replace') {
        const { min, max } = timeRange(batch)
        const symbols = new Set(batch.columns.symbol.values as string[])
        const f = { symbols, start: min, end: max + 1 }
        const seen = new Set(refs.map((r) => r.path))
        for (const m of await loadPartitions(ctx, ds, f)) {
          if (!seen.has(m.path)) touched = [...touched, { values: m.values, path: m.path }]
        }
        ctx.stats.delete++
        await col.deleteMany(rowQuery(f))
      }
      await upsertRows(ctx, col, docs)
    }
    await this.refresh(ctx, ds, touched, true)
    return { rowsWritten: batch.length, partitions: touched }
  }

  /** Recomputes and commits the metadata of partitions; returns those committed. */
  private async refresh(ctx: MongoContext, ds: string, refs: PartitionRef[], force: boolean): Promise<PartitionRef[]> {
    const limit = pLimit(this.concurrency)
    const done = await Promise.all(refs.map((ref) => limit(() => refreshPartition(ctx, ds, ref, force))))
    return refs.filter((_, i) => done[i])
  }

  async delete(dataset: string, options: DeleteOptions = {}): Promise<DeleteResult> {
    const ds = checkDatasetName(dataset)
    const ctx = await this.context()
    const f = rowFilter(options)
    const meta = await loadDataset(ctx, ds)
    if (!meta) return { rowsDeleted: 0, partitions: [] }
    const candidates = await loadPartitions(ctx, ds, f)
    ctx.stats.delete++
    const res = await this.rows(ctx, ds).deleteMany(rowQuery(f))
    if (res.deletedCount === 0) return { rowsDeleted: 0, partitions: [] }
    const partitions = await this.refresh(
      ctx,
      ds,
      candidates.map((m) => ({ values: m.values, path: m.path })),
      false,
    )
    return { rowsDeleted: res.deletedCount, partitions }
  }

  // ---- reads -----------------------------------------------------------------------------

  async read(dataset: string, options: ReadOptions = {}): Promise<Table> {
    const ds = checkDatasetName(dataset)
    const ctx = await this.context()
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    if (!(limit >= 0)) throw new ValidationError([{ field: 'limit', message: 'expected a non-negative integer' }])
    const f = rowFilter(options)
    const meta = await loadDataset(ctx, ds)
    if (!meta) return emptyTable(KEY_SCHEMA)
    const schema = projectSchema(ds, meta.schema, options.columns)
    if (limit === 0) return emptyTable(schema)
    const col = this.rows(ctx, ds)
    return Number.isFinite(limit) ? readLimited(ctx, col, f, schema, Math.floor(limit)) : readAll(ctx, col, f, schema)
  }

  async *scan(dataset: string, options: ScanOptions = {}): AsyncIterable<Table> {
    const ds = checkDatasetName(dataset)
    const batchSize = options.batchSize ?? 65_536
    if (!(batchSize >= 1)) throw new ValidationError([{ field: 'batchSize', message: 'expected a positive integer' }])
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    if (!(limit >= 0)) throw new ValidationError([{ field: 'limit', message: 'expected a non-negative integer' }])
    const ctx = await this.context()
    const f = rowFilter(options)
    const meta = await loadDataset(ctx, ds)
    if (!meta) return
    const schema = projectSchema(ds, meta.schema, options.columns)
    yield* scanRows(ctx, this.rows(ctx, ds), f, schema, Math.floor(batchSize), limit)
  }

  // ---- catalog ---------------------------------------------------------------------------

  async listDatasets(): Promise<string[]> {
    return listDatasetNames(await this.context())
  }

  async describe(dataset: string): Promise<DatasetDescription | null> {
    const ds = checkDatasetName(dataset)
    const ctx = await this.context()
    const meta = await loadDataset(ctx, ds)
    if (!meta) return null
    return describeDataset(meta, await loadPartitions(ctx, ds, rowFilter({})))
  }

  async listPartitions(dataset: string, filter: PartitionFilter = {}): Promise<PartitionInfo[]> {
    const ds = checkDatasetName(dataset)
    const ctx = await this.context()
    const f = rowFilter(filter)
    if (!(await loadDataset(ctx, ds))) return []
    return (await loadPartitions(ctx, ds, f)).map(partitionInfo)
  }

  async getManifest(dataset: string, partition: Record<string, string> | string): Promise<PartitionManifest | null> {
    const ds = checkDatasetName(dataset)
    const ctx = await this.context()
    const meta = await loadDataset(ctx, ds)
    if (!meta) return null
    const by = meta.partitionBy
    let path: string | null = null
    if (typeof partition === 'string') {
      const values = parsePath(by, partition)
      path = values ? pathOf(by, values) : null
    } else if (partition && by.every((k) => typeof partition[k] === 'string') && Object.keys(partition).length === by.length) {
      const p = pathOf(by, partition)
      path = parsePath(by, p) ? p : null
    }
    if (!path) return null
    const m = await loadPartition(ctx, ds, path)
    return m ? toManifest(m) : null
  }

  // ---- maintenance -----------------------------------------------------------------------

  async verify(dataset?: string): Promise<VerifyReport> {
    const ctx = await this.context()
    const names = dataset === undefined ? await listDatasetNames(ctx) : [checkDatasetName(dataset)]
    return verifyDatasets(ctx, names)
  }

  /** Nothing to collect: rows are deleted in place, there are no unreferenced files. */
  async gc(options: { dataset?: string } = {}): Promise<GcReport> {
    if (options.dataset !== undefined) checkDatasetName(options.dataset)
    await this.context()
    return { filesDeleted: 0, bytesDeleted: 0, keys: [] }
  }
}
