/**
 * A `StorageDriver` on MongoDB, behind the front `createMongoStorage` puts on it (Node and Bun only: the official driver needs `node:net`/`node:tls`
 * and does not run on Cloudflare Workers).
 *
 * Layout (database `db`): `ds_<dataset>` holds one document per row (see `documents.ts`) with
 * an index on `{ symbol: 1, t: 1 }`; `friday_datasets` one document per dataset (partitioning
 * and schema: the source of truth for column types); `friday_partitions` one document per
 * partition (symbol + UTC date by default, as in the lake): version, rows, time range, column
 * stats and a checksum of its rows.
 *
 * A write: validate the whole batch (strings must be well-formed UTF-16: BSON is UTF-8); commit
 * new columns to the dataset document (compare-and-set on its version); record the write's
 * intent on each partition it touches; write the rows (bulk, unordered, 1,000 per batch); then
 * recompute each touched partition's stats from its rows and commit them as a new version
 * (compare-and-set again), dropping the intent. There are no multi-document transactions
 * (CongoDB has none), so every mode is built to be safe when the process dies at any point:
 * - upsert: each key holds its old or its new document; re-sending the batch finishes it;
 * - replace: the batch is upserted first, then the range's keys not in the batch are deleted, so
 *   no key loses both values and readers never see the range empty;
 * - append: keys already holding exactly the batch's values count as written, so re-sending an
 *   append that landed succeeds; a key with other values is a `DuplicateKeyError`.
 * A failure after row commands were sent (a dropped connection, a timeout) is a
 * `CommitInDoubtError` (503, `details.outcome: 'unknown'`): the rows may have been written. A reader can observe rows
 * of a running write before its metadata commit, and a write spanning batches or partitions
 * partly. `describe`/`listPartitions`/`getManifest` recompute the stats of partitions with
 * pending intents from their rows, so they count what is stored even after a writer died;
 * `verify()` compares the committed metadata and reports such partitions until the next commit.
 */

import type { MongoClient } from 'mongodb'
import { runAll } from '../../concurrency.js'
import type { DriverGc, DriverRead, DriverScan, DriverWrite, StorageDriver } from '../../core/driver.js'
import { ClosedError, CommitConflictError, ConfigError, StorageError } from '../../core/errors.js'
import { ALL_ROWS, type TimeSymbolFilter } from '../../core/filter.js'
import { createDataStorage, type FrontedStorage } from '../../core/front.js'
import { newId } from '../../core/ids.js'
import type { OpLogStore } from '../../core/oplog-types.js'
import { checkPartitionBy, groupByPartition, type PartitionKey, parsePath, pathOf } from '../../core/partitioning.js'
import { DEFAULT_ROTATION, type RotationPolicy } from '../../core/rotation-policy.js'
import { assertUniqueKeys, dedupeLastWins, emptyTable, KEY_SCHEMA, sortTable, timeRange } from '../../core/table.js'
import type {
  DatasetDescription,
  DeleteResult,
  GcReport,
  InputColumns,
  InputRow,
  MaintenanceOptions,
  MaintenanceReport,
  PartitionInfo,
  PartitionManifest,
  PartitionRef,
  StoreRequestStats,
  Table,
  VerifyReport,
  WriteResult,
} from '../../core/types.js'
import type { ParquetCodecs } from '../../parquet/index.js'
import type { ObjectStore } from '../../stores/types.js'
import { checkPartitionCount, DEFAULT_LIMITS, type InputLimits } from '../../table/limits.js'
import { applyTimeUnit, normalizeInput } from '../../table/normalize.js'
import {
  commitSchema,
  type DatasetMeta,
  listDatasetNames,
  loadDataset,
  loadPartition,
  loadPartitions,
  markPending,
  partitionsWithStaleIntents,
  refreshPartition,
  STALE_INTENT_MS,
  settlePartitions,
} from './catalog.js'
import { emptyStats, type MongoContext, PARTITIONS, rowsCollection } from './context.js'
import { assertDocumentSizes, assertWellFormed, type RowDoc } from './documents.js'
import { objectId } from './mongo-driver.js'
import { MongoOpLogStore } from './oplog-store.js'
import { projectSchema, type RowFilter, rowFilter, rowQuery } from './query.js'
import { readAll, readLimited, scanRows } from './reads.js'
import { maintainRetention } from './retention.js'
import { verifyDatasets } from './verify.js'
import { describeDataset, partitionInfo, toManifest } from './views.js'
import { inDoubt, insertRows, keyedDocs, replaceRange, rowsToAppend, upsertRows } from './writes.js'

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
  /** The `file_rotation` policy `maintain()` applies (row retention only; default: keep rows forever). */
  rotation?: RotationPolicy
  /** Where `maintain()` archives expired rows (called once per run, closed after it); none: they are deleted unarchived. */
  archiveStore?: () => ObjectStore
  /** Parquet codecs of those archives (default `jsCodecs()`; the Node entry passes `nativeCodecs()`). */
  archiveCodecs?: ParquetCodecs
  /** Columns per dataset and per write, partitions per write (default `DEFAULT_LIMITS`). */
  limits?: InputLimits
  /**
   * Write intents at least this old belong to a writer that died between its rows and its
   * metadata commit: `gc()` and `maintain()` settle their partitions (default one hour).
   */
  gcGraceMs?: number
}

const DB_NAME_RE = /^[^/\\. "$*<>:|?\u0000]{1,63}$/

/** The MongoDB storage: the driver (its options checked once) behind the front; the client is created/connected lazily. */
export function createMongoStorage(options: MongoStorageOptions): FrontedStorage<MongoStorage> {
  return createDataStorage(new MongoStorage(options))
}

/** `ConfigError` naming each bad option. */
function checkOptions(options: MongoStorageOptions): void {
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
}

/** The range a `replace` of `batch` covers: its symbols over [batch min, batch max]. */
function replaceFilter(batch: Table): RowFilter {
  const { min, max } = timeRange(batch)
  return { symbols: new Set(batch.columns.symbol.values as string[]), start: min, end: max + 1 }
}

/** The MongoDB driver: arguments arrive checked by the front (`createMongoStorage`, `createStorage`). */
export class MongoStorage implements StorageDriver {
  readonly backend: string
  private readonly partitionBy: PartitionKey[]
  private readonly stats = emptyStats()
  private readonly indexed = new Set<string>()
  private readonly concurrency: number
  private readonly limits: InputLimits
  private ctx: Promise<MongoContext> | null = null
  private client: MongoClient | null = null
  private closed = false

  constructor(private readonly options: MongoStorageOptions) {
    checkOptions(options)
    this.backend = options.backend ?? 'mongodb'
    this.partitionBy = checkPartitionBy(options.partitionBy ?? ['symbol', 'date'])
    this.concurrency = options.concurrency ?? 8
    this.limits = options.limits ?? DEFAULT_LIMITS
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

  async write(ds: string, input: InputRow[] | InputColumns | Table, request: DriverWrite): Promise<WriteResult> {
    const data = applyTimeUnit(input, request.timeUnit)
    const mode = request.mode
    const ctx = await this.context()
    // validate everything before the first byte is written
    let meta = await loadDataset(ctx, ds)
    let { table, newColumns } = normalizeInput(data, meta?.schema ?? null, this.limits)
    if (table.length === 0) return { rowsWritten: 0, partitions: [] }
    assertWellFormed(table)
    assertDocumentSizes(table)
    // a batch touching too many partitions is a 413 before anything (even the dataset) is written
    checkPartitionCount(groupByPartition(table, meta?.partitionBy ?? this.partitionBy).length, this.limits)
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
      ;({ table, newColumns } = normalizeInput(data, meta?.schema ?? null, this.limits))
    }
    const partitionBy = meta.partitionBy
    const batch = mode === 'append' ? sortTable(table) : dedupeLastWins(table)
    const refs = groupByPartition(batch, partitionBy).map((g) => g.ref)
    const col = this.rows(ctx, ds)
    await this.ensureIndexes(ctx, ds, partitionBy)
    const writeId = newId()
    let docs = keyedDocs(batch, objectId())
    let touched = refs
    const range = mode === 'replace' ? replaceFilter(batch) : null
    if (range) {
      const seen = new Set(refs.map((r) => r.path))
      for (const m of await loadPartitions(ctx, ds, range)) {
        if (!seen.has(m.path)) touched = [...touched, { values: m.values, path: m.path }]
      }
    }
    if (mode === 'append') {
      docs = await rowsToAppend(ctx, col, docs) // DuplicateKeyError before anything is written
      if (docs.length === 0) {
        // all there already (a retry of an append that landed): commit what its writer may not have
        await this.refresh(ctx, ds, refs, false)
        return { rowsWritten: batch.length, partitions: refs }
      }
    }
    // from here on, a failure leaves the outcome unknown: the error says so (see inDoubt)
    try {
      await markPending(ctx, ds, touched, writeId, meta.schema)
      if (mode === 'append') {
        try {
          await insertRows(ctx, col, docs)
        } catch (err) {
          // a lost race: the rows this call inserted are gone again; the intents go too
          if (err instanceof StorageError) await this.refresh(ctx, ds, touched, false, writeId).catch(() => undefined)
          throw err
        }
      } else if (range) await replaceRange(ctx, col, docs, range)
      else await upsertRows(ctx, col, docs)
      await this.refresh(ctx, ds, touched, true, writeId)
    } catch (err) {
      throw inDoubt(err, ds, mode, batch.length)
    }
    return { rowsWritten: batch.length, partitions: touched }
  }

  /**
   * Recomputes and commits the metadata of partitions; returns those committed. Returns or throws
   * only once every partition it started has settled (none starts after a failure), so no commit
   * of this call can land after it.
   */
  private async refresh(
    ctx: MongoContext,
    ds: string,
    refs: PartitionRef[],
    force: boolean,
    writeId?: string,
  ): Promise<PartitionRef[]> {
    const done = await runAll(refs, this.concurrency, (ref) => refreshPartition(ctx, ds, ref, force, writeId))
    return refs.filter((_, i) => done[i])
  }

  async delete(ds: string, filter: TimeSymbolFilter): Promise<DeleteResult> {
    const ctx = await this.context()
    const f = rowFilter(filter)
    const meta = await loadDataset(ctx, ds)
    if (!meta) return { rowsDeleted: 0, partitions: [] }
    const candidates = (await loadPartitions(ctx, ds, f)).map((m) => ({ values: m.values, path: m.path }))
    const writeId = newId()
    await markPending(ctx, ds, candidates, writeId, meta.schema)
    ctx.stats.delete++
    const res = await this.rows(ctx, ds).deleteMany(rowQuery(f))
    const partitions = await this.refresh(ctx, ds, candidates, false, writeId)
    return res.deletedCount === 0 ? { rowsDeleted: 0, partitions: [] } : { rowsDeleted: res.deletedCount, partitions }
  }

  // ---- reads -----------------------------------------------------------------------------

  async read(ds: string, options: DriverRead): Promise<Table> {
    const ctx = await this.context()
    const limit = options.limit
    const f = rowFilter(options.filter)
    const meta = await loadDataset(ctx, ds)
    if (!meta) return emptyTable(KEY_SCHEMA)
    const schema = projectSchema(ds, meta.schema, options.columns)
    if (limit === 0) return emptyTable(schema)
    const col = this.rows(ctx, ds)
    return Number.isFinite(limit) ? readLimited(ctx, col, f, schema, limit) : readAll(ctx, col, f, schema)
  }

  async *scan(ds: string, options: DriverScan): AsyncIterable<Table> {
    const ctx = await this.context()
    const f = rowFilter(options.filter)
    const meta = await loadDataset(ctx, ds)
    if (!meta) return
    const schema = projectSchema(ds, meta.schema, options.columns)
    yield* scanRows(ctx, this.rows(ctx, ds), f, schema, options.batchSize, options.limit)
  }

  // ---- catalog ---------------------------------------------------------------------------

  async listDatasets(): Promise<string[]> {
    return listDatasetNames(await this.context())
  }

  async describe(ds: string): Promise<DatasetDescription | null> {
    const ctx = await this.context()
    const meta = await loadDataset(ctx, ds)
    if (!meta) return null
    const all = ALL_ROWS
    return describeDataset(meta, await settlePartitions(ctx, ds, meta.schema, await loadPartitions(ctx, ds, all), all))
  }

  async listPartitions(ds: string, filter: TimeSymbolFilter): Promise<PartitionInfo[]> {
    const ctx = await this.context()
    const f = rowFilter(filter)
    const meta = await loadDataset(ctx, ds)
    if (!meta) return []
    return (await settlePartitions(ctx, ds, meta.schema, await loadPartitions(ctx, ds, f), f)).map(partitionInfo)
  }

  async getManifest(ds: string, partition: Record<string, string> | string): Promise<PartitionManifest | null> {
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
    const stored = await loadPartition(ctx, ds, path)
    if (!stored) return null
    const all = ALL_ROWS
    const [m] = await settlePartitions(ctx, ds, meta.schema, [stored], all, true)
    return m.version === 0 && m.rows === 0 ? null : toManifest(m) // version 0: a placeholder, never committed
  }

  // ---- maintenance -----------------------------------------------------------------------

  async verify(dataset: string | undefined): Promise<VerifyReport> {
    const ctx = await this.context()
    const names = dataset === undefined ? await listDatasetNames(ctx) : [dataset]
    return verifyDatasets(ctx, names)
  }

  /**
   * Row retention under `options.rotation` (see retention.ts): expired rows are archived to
   * `options.archiveStore` when given, then deleted; a run that died is finished by the next one
   * without archiving any row twice. Rotation and compaction mean nothing here (rows, not files).
   */
  async maintain(options: MaintenanceOptions): Promise<MaintenanceReport> {
    const ctx = await this.context()
    return maintainRetention(
      {
        ctx,
        backend: this.backend,
        policy: this.options.rotation ?? DEFAULT_ROTATION,
        archiveStore: this.options.archiveStore,
        archiveCodecs: this.options.archiveCodecs,
        listDatasets: () => listDatasetNames(ctx),
        stats: () => this.requestStats(),
        refresh: async (ds, refs, writeId) => {
          await this.refresh(ctx, ds, refs, false, writeId)
        },
        repair: (ds, dryRun) => this.settleStale(ctx, ds, this.options.gcGraceMs ?? STALE_INTENT_MS, dryRun),
      },
      options,
    )
  }

  /**
   * No files to collect (rows are deleted in place). What a writer that died between its rows
   * and its metadata commit left: partitions holding a write intent at least `graceMs` old
   * (default `gcGraceMs`) get their stats recomputed from their rows and committed, so
   * `verify()` and the catalog agree with the rows again. `keys` lists those partitions
   * (`<dataset>/<path>`); with `dryRun` nothing is committed.
   */
  async gc(options: DriverGc): Promise<GcReport> {
    const graceMs = options.graceMs ?? this.options.gcGraceMs ?? STALE_INTENT_MS
    const ctx = await this.context()
    return {
      filesDeleted: 0,
      bytesDeleted: 0,
      keys: await this.settleStale(ctx, options.dataset, graceMs, options.dryRun),
    }
  }

  /** Settles the partitions with intents at least `staleMs` old (see `gc()`); returns them. */
  private async settleStale(ctx: MongoContext, dataset: string | undefined, staleMs: number, dryRun: boolean): Promise<string[]> {
    const keys: string[] = []
    for (const ds of dataset !== undefined ? [dataset] : await listDatasetNames(ctx)) {
      const refs = await partitionsWithStaleIntents(ctx, ds, staleMs)
      if (!dryRun) await runAll(refs, this.concurrency, (ref) => refreshPartition(ctx, ds, ref, false, undefined, staleMs))
      for (const ref of refs) keys.push(`${ds}/${ref.path}`)
    }
    return keys
  }
}
