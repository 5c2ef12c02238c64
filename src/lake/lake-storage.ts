/** The partitioned Parquet lake: a `StorageDriver` over any ObjectStore (local disk, S3, R2, MinIO); `createLakeStorage` puts the front on it. */

import { allOwned, runAll, settleAll } from '../concurrency.js'
import { DescribeTotals, isoOrNull } from '../core/describe.js'
import type { DriverGc, DriverRead, DriverScan, DriverSnapshot, DriverWrite, StorageDriver } from '../core/driver.js'
import {
  ClosedError,
  CommitConflictError,
  CommitInDoubtError,
  ConfigError,
  FileVanishedError,
  NotFoundError,
} from '../core/errors.js'
import { ALL_ROWS, projectSchema } from '../core/filter.js'
import { createDataStorage, type FrontedStorage } from '../core/front.js'
import { isDatasetName } from '../core/keys.js'
import { META_ROOT } from '../core/layout.js'
import type { OpLogStore } from '../core/oplog-types.js'
import { checkPartitionBy, groupByPartition, type PartitionKey, parsePath, pathOf, timeRangeOf } from '../core/partitioning.js'
import { DEFAULT_ROTATION, type RotationPolicy } from '../core/rotation-policy.js'
import { assertUniqueKeys, concat, dedupeLastWins, emptyTable, KEY_SCHEMA, slice, sortTable, take } from '../core/table.js'
import type {
  ArchiveEntry,
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
  RestoreOptions,
  RestoreResult,
  Schema,
  StoreRequestStats,
  Table,
  VerifyReport,
  WriteResult,
} from '../core/types.js'
import { LakeOpLogStore } from '../oplog/lake-store.js'
import { encodeSchemaFile, jsCodecs, loadZstdWasm } from '../parquet/index.js'
import { assertConditionalWrites } from '../stores/self-test.js'
import type { ObjectStore } from '../stores/types.js'
import { checkPartitionCount, DEFAULT_LIMITS, type InputLimits } from '../table/limits.js'
import { applyTimeUnit, type Normalized, normalizeInput } from '../table/normalize.js'
import { listArchiveEntries } from './archive.js'
import { restoreArchived } from './archive-restore.js'
import { readIntoOne } from './bulk-read.js'
import {
  commonMetadataKey,
  type DatasetDoc,
  datasetBase,
  type LakeContext,
  loadCodecs,
  manifestBase,
  newCommitId,
} from './context.js'
import { maintainLake } from './maintain.js'
import { collectGarbage, verifyLake } from './maintenance.js'
import { webSha256Hex } from './manifest.js'
import { ManifestLog } from './manifest-log.js'
import { mutatePartition, type Planner, widenSchema } from './mutate.js'
import type { LakeOptions } from './options.js'
import { refusedBeforeWriting, writeFailure } from './owned.js'
import { appendPlanner, assertNoExistingKeys, rewritePlanner, spanOf, upsertPlanner } from './planners.js'
import { findPartitions, type RowFilter, readPartition } from './read-path.js'

const DOC_TTL_MS = 5_000

/** The rows at `index` (ascending): a view when they are contiguous, as in a sorted batch under symbol-major layouts. */
function rowsOf(batch: Table, index: number[]): Table {
  const first = index[0]
  const last = index[index.length - 1]
  return last - first + 1 === index.length ? slice(batch, first, last + 1) : take(batch, index)
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** The lake as a `DataStorage`: the contract plus the lake's `store`. */
export type LakeDataStorage = FrontedStorage<LakeStorage>

/** The lake behind the front, which checks every call once (see `core/front.ts`). */
export function createLakeStorage(options: LakeOptions): LakeDataStorage {
  return createDataStorage(new LakeStorage(options))
}

/** The lake's driver: arguments arrive checked by the front (`createLakeStorage`, `createStorage`). */
export class LakeStorage implements StorageDriver {
  readonly backend: string
  private readonly ctx: LakeContext
  private readonly partitionBy: PartitionKey[]
  private readonly requireConditionalWrites: boolean
  private readonly validatePartitioning: boolean
  private readonly rotation: RotationPolicy
  private readonly limits: InputLimits
  private writable: Promise<void> | null = null
  private readable: Promise<void> | null = null
  private readonly docs = new Map<string, { doc: DatasetDoc; at: number }>()
  private closed = false

  constructor(options: LakeOptions) {
    this.backend = options.backend
    this.partitionBy = checkPartitionBy(options.partitionBy ?? ['symbol', 'date'])
    this.requireConditionalWrites = options.requireConditionalWrites ?? true
    this.validatePartitioning = options.validatePartitioning ?? true
    this.rotation = options.rotation ?? DEFAULT_ROTATION
    this.limits = options.limits ?? DEFAULT_LIMITS
    const store: ObjectStore = options.store
    this.ctx = {
      store,
      log: new ManifestLog(store, store.capabilities.ifMatch ? 'cas' : 'chain'),
      compression: options.compression ?? 'snappy',
      codecs: options.codecs ?? jsCodecs(),
      loadZstd: options.loadZstd ?? (() => loadZstdWasm()),
      sha256: options.sha256 ?? webSha256Hex,
      rowGroupSize: options.rowGroupSize ?? 100_000,
      gcGraceMs: options.gcGraceMs ?? 3_600_000,
      concurrency: options.concurrency ?? 16,
      counters: { retries: 0 },
    }
  }

  /** The store under this lake (for tools and tests). */
  get store(): ObjectStore {
    return this.ctx.store
  }

  // ---- lifecycle -------------------------------------------------------------------------

  private ensureReadable(): Promise<void> {
    if (this.closed) throw new ClosedError()
    this.readable ??= Promise.all([this.ctx.store.ensureContainer(), loadCodecs(this.ctx)]).then(
      () => undefined,
      (err) => {
        this.readable = null
        throw err
      },
    )
    return this.readable
  }

  /** Once per instance: the container exists and (unless disabled) conditional writes are enforced. */
  private ensureWritable(): Promise<void> {
    if (this.closed) throw new ClosedError()
    this.writable ??= (async () => {
      await this.ensureReadable()
      if (this.requireConditionalWrites) await assertConditionalWrites(this.ctx.store)
    })().catch((err) => {
      this.writable = null
      throw err
    })
    return this.writable
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.ctx.store.close()
  }

  requestStats(): StoreRequestStats {
    return { ...this.ctx.store.stats(), retries: this.ctx.counters.retries }
  }

  /** The op log's NDJSON batches under `_oplog/` in this lake's store (see `src/oplog/lake-store.ts`). */
  opLogStore(): OpLogStore {
    return new LakeOpLogStore(this.ctx.store, () => this.ensureReadable())
  }

  // ---- dataset descriptor ----------------------------------------------------------------

  private async loadDoc(ds: string, fresh = false): Promise<DatasetDoc | null> {
    const cached = this.docs.get(ds)
    if (!fresh && cached && Date.now() - cached.at < DOC_TTL_MS) return cached.doc
    const { doc } = await this.ctx.log.load<DatasetDoc>(datasetBase(ds))
    if (doc) {
      this.checkPartitioning(doc)
      this.docs.set(ds, { doc, at: Date.now() })
    }
    return doc
  }

  /**
   * Refuses to create `ds` where a format-1 lake kept it (its metadata inside `<dataset>/`): the
   * new dataset's manifests would not name the old files, and gc would delete them as orphans.
   */
  private async refuseFormat1(ds: string): Promise<void> {
    const old = `${ds}/_dataset.json`
    if (!(await this.ctx.store.head(old))) return
    throw new ConfigError(
      `dataset '${ds}' was written by an older version in lake format 1 ('${old}'); this version reads format 2 (metadata under '${datasetBase(ds)}.json'): export the dataset with the older version and write it again, or use another location`,
      [{ path: 'storage', message: `the lake holds '${old}', written in lake format 1` }],
    )
  }

  private checkPartitioning(doc: DatasetDoc): void {
    const same = doc.partitionBy.length === this.partitionBy.length && doc.partitionBy.every((k, i) => k === this.partitionBy[i])
    if (!same && this.validatePartitioning) {
      throw new ConfigError(
        `dataset '${doc.name}' is partitioned by ${JSON.stringify(doc.partitionBy)} but the configuration says ${JSON.stringify(this.partitionBy)}`,
        [
          {
            path: 'partition_by',
            message: `expected ${JSON.stringify(doc.partitionBy)} for dataset '${doc.name}' (or set validate_partitioning: false)`,
          },
        ],
      )
    }
  }

  /** Normalizes the input against the dataset schema, adding new columns with a conditional commit. */
  /** `first`: the batch already normalized against `firstDoc`'s schema (reused while that stays current). */
  private async prepare(
    ds: string,
    data: InputRow[] | InputColumns | Table,
    firstDoc: DatasetDoc | null,
    first: Normalized,
  ): Promise<{ doc: DatasetDoc | null; batch: Table }> {
    let doc = firstDoc
    for (let attempt = 0; attempt < 30; attempt++) {
      const { table, newColumns } = doc === firstDoc ? first : normalizeInput(data, doc?.schema ?? null, this.limits)
      if (table.length === 0) return { doc, batch: table }
      if (doc && newColumns.length === 0) return { doc, batch: table }
      const { doc: current, token } = await this.ctx.log.load<DatasetDoc>(datasetBase(ds))
      if (current && (current.version !== doc?.version || !doc)) {
        this.checkPartitioning(current)
        doc = current // someone changed it: normalize again against the fresh schema
        continue
      }
      if (!current) await this.refuseFormat1(ds)
      const now = new Date().toISOString()
      const next: DatasetDoc = {
        format: 'friday.dataset',
        formatVersion: 2,
        name: ds,
        version: token.version + 1,
        commitId: newCommitId(),
        committedAt: now,
        createdAt: current?.createdAt ?? now,
        partitionBy: current?.partitionBy ?? this.partitionBy,
        schema: [...(current?.schema ?? KEY_SCHEMA), ...newColumns],
      }
      if (await this.ctx.log.commit(datasetBase(ds), next, token)) {
        this.docs.set(ds, { doc: next, at: Date.now() })
        // derived from the doc just committed, for outside readers; a later column addition rewrites it
        await this.ctx.store.put(commonMetadataKey(ds), encodeSchemaFile(next.schema))
        return { doc: next, batch: table }
      }
      doc = await this.loadDoc(ds, true)
    }
    throw new CommitConflictError(datasetBase(ds), 30)
  }

  // ---- writes ----------------------------------------------------------------------------

  async write(ds: string, input: InputRow[] | InputColumns | Table, request: DriverWrite): Promise<WriteResult> {
    const data = applyTimeUnit(input, request.timeUnit)
    const mode = request.mode
    await this.ensureWritable()
    // validate everything before the first byte is written
    const existing = await this.loadDoc(ds)
    const first = normalizeInput(data, existing?.schema ?? null, this.limits)
    if (first.table.length === 0) return { rowsWritten: 0, partitions: [] }
    // a batch touching too many partitions is a 413 before anything (even the dataset) is written
    checkPartitionCount(groupByPartition(first.table, existing?.partitionBy ?? this.partitionBy).length, this.limits)
    if (mode === 'append') {
      assertUniqueKeys(first.table)
      // a batch refused for its keys stores nothing, not even its new columns
      if (existing) await this.checkAppend(ds, existing, sortTable(first.table))
    }
    const { doc, batch: normalized } = await this.prepare(ds, data, existing, first)
    if (!doc) throw new Error('unreachable: dataset descriptor missing after prepare')
    const batch = mode === 'append' ? sortTable(normalized) : dedupeLastWins(normalized)
    const schema = doc.schema
    const groups = groupByPartition(batch, doc.partitionBy).map((g) => ({ ref: g.ref, rows: rowsOf(batch, g.index) }))
    if (mode === 'append' && existing && existing.version !== doc.version) await this.checkAppend(ds, doc, batch)

    let work: { ref: PartitionRef; rows: Table | null; planner: Planner }[]
    if (mode === 'replace') {
      const span = spanOf(batch)
      const byPath = new Map(groups.map((g) => [g.ref.path, g]))
      const existingParts = await findPartitions(this.ctx, ds, doc.partitionBy, {
        symbols: span.symbols,
        start: span.min,
        end: span.max + 1,
      })
      const all = groups.map((g) => ({ ref: g.ref, rows: g.rows as Table | null }))
      for (const ref of existingParts) if (!byPath.has(ref.path)) all.push({ ref, rows: null })
      work = all.map((g) => ({ ...g, planner: rewritePlanner(this.ctx, ds, g.ref, span, g.rows) }))
    } else {
      work = groups.map((g) => ({
        ...g,
        planner: mode === 'append' ? appendPlanner(this.ctx, ds, g.ref, g.rows) : upsertPlanner(this.ctx, ds, g.ref, g.rows),
      }))
    }
    const settled = await settleAll(work, this.ctx.concurrency, async (w, signal) => {
      const r = await mutatePartition(this.ctx, ds, w.ref, schema, w.planner, { signal })
      return { committed: r.committed, rows: w.rows?.length ?? 0 }
    })
    if (settled.some((s) => !s.ok)) {
      throw writeFailure(
        work.map((w) => w.ref),
        settled,
        (e) => e instanceof CommitInDoubtError,
      )
    }
    return { rowsWritten: batch.length, partitions: work.map((w) => w.ref) }
  }

  /** append's check of every partition before any commit, so a refused batch writes nothing. */
  private async checkAppend(ds: string, doc: DatasetDoc, batch: Table): Promise<void> {
    const groups = groupByPartition(batch, doc.partitionBy).map((g) => ({ ref: g.ref, rows: rowsOf(batch, g.index) }))
    const schema = doc.schema
    await runAll(groups, this.ctx.concurrency, async (g) => {
      for (let attempt = 0; ; attempt++) {
        const { doc: m } = await this.ctx.log.load<PartitionManifest>(manifestBase(ds, g.ref.path))
        try {
          await assertNoExistingKeys(this.ctx, ds, g.ref, g.rows, m, widenSchema(schema, m?.schema))
          return
        } catch (err) {
          // a file was replaced meanwhile (compaction): check against the new manifest
          if (!(err instanceof FileVanishedError) || attempt >= 30) throw err
        }
      }
    }).catch((err) => {
      throw refusedBeforeWriting(
        err,
        groups.map((g) => g.ref),
      )
    })
  }

  async delete(ds: string, f: RowFilter): Promise<DeleteResult> {
    await this.ensureWritable()
    const doc = await this.loadDoc(ds, true)
    if (!doc) return { rowsDeleted: 0, partitions: [] }
    const parts = await findPartitions(this.ctx, ds, doc.partitionBy, f)
    const span = { min: f.start, max: f.end - 1, symbols: f.symbols }
    const settled = await settleAll(parts, this.ctx.concurrency, async (ref, signal) => {
      let deleted = 0
      const r = await mutatePartition(
        this.ctx,
        ds,
        ref,
        doc.schema,
        rewritePlanner(this.ctx, ds, ref, span, null, (n) => (deleted = n)),
        { signal },
      )
      return { committed: r.committed, rows: r.committed ? deleted : 0 }
    })
    if (settled.some((s) => !s.ok)) throw writeFailure(parts, settled, (e) => e instanceof CommitInDoubtError)
    const results = settled.map((s, i) => ({ ref: parts[i], deleted: (s as { ok: true; value: { rows: number } }).value.rows }))
    const touched = results.filter((r) => r.deleted > 0)
    return { rowsDeleted: touched.reduce((s, r) => s + r.deleted, 0), partitions: touched.map((r) => r.ref) }
  }

  // ---- reads -----------------------------------------------------------------------------

  private projection(doc: DatasetDoc, columns?: string[]): { schema: Schema; columns?: string[] } {
    if (columns === undefined) return { schema: doc.schema }
    const schema = projectSchema(doc.name, doc.schema, columns)
    return { schema, columns: schema.map((c) => c.name) }
  }

  async read(dataset: string, options: DriverRead): Promise<Table> {
    const parts: Table[] = []
    let schema: Schema = KEY_SCHEMA
    let n = 0
    const limit = options.limit
    if (limit === 0) {
      // The schema only (the dataset document): no listing, no manifest.
      const doc = await this.datasetOrNull(dataset)
      return emptyTable(doc ? this.projection(doc, options.columns).schema : KEY_SCHEMA)
    }
    if (limit === Number.POSITIVE_INFINITY) {
      const whole = await this.readWhole(dataset, options)
      if (whole) return whole
    }
    for await (const { table, schema: s } of this.partitions(dataset, options)) {
      schema = s
      parts.push(table)
      n += table.length
      if (n >= limit && this.symbolMajor(dataset)) break
    }
    if (!parts.length) {
      // no rows: the dataset's columns all the same, as without a limit (and with limit 0)
      const doc = await this.datasetOrNull(dataset)
      return emptyTable(doc ? this.projection(doc, options.columns).schema : KEY_SCHEMA)
    }
    let t = concat(parts, schema)
    if (!this.symbolMajor(dataset)) t = sortTable(t)
    return t.length > limit ? slice(t, 0, limit) : t
  }

  /** The whole result decoded into one table (see `bulk-read.ts`); null when it must be read partition by partition. */
  private async readWhole(dataset: string, options: DriverRead): Promise<Table | null> {
    const doc = await this.datasetOrNull(dataset)
    const f = options.filter
    if (!doc) return null
    const proj = this.projection(doc, options.columns)
    const refs = await findPartitions(this.ctx, doc.name, doc.partitionBy, f)
    const t = await readIntoOne(this.ctx, doc.name, refs, f, proj.schema, proj.columns)
    if (!t) return null
    return this.symbolMajor(dataset) ? t : sortTable(t)
  }

  async *scan(dataset: string, options: DriverScan): AsyncIterable<Table> {
    const batchSize = options.batchSize
    let remaining = options.limit
    if (!this.symbolMajor(dataset)) {
      // period-major layout: one pass per symbol keeps the (symbol, timestamp) order
      const doc = await this.datasetOrNull(dataset)
      if (!doc) return
      const symbols = options.filter.symbols ?? (await this.describe(dataset))?.symbols ?? []
      for (const symbol of [...symbols].sort()) {
        const one = { ...options, filter: { ...options.filter, symbols: new Set([symbol]) } }
        for await (const batch of this.scanOrdered(dataset, one, batchSize, remaining)) {
          remaining -= batch.length
          yield batch
        }
        if (remaining <= 0) return
      }
      return
    }
    yield* this.scanOrdered(dataset, options, batchSize, remaining)
  }

  private async *scanOrdered(dataset: string, options: DriverRead, batchSize: number, remaining: number): AsyncIterable<Table> {
    let pending: Table[] = []
    let pendingRows = 0
    let schema: Schema = KEY_SCHEMA
    for await (const { table, schema: s } of this.partitions(dataset, options, 2)) {
      schema = s
      let t = table
      if (t.length > remaining) t = slice(t, 0, remaining)
      remaining -= t.length
      let off = 0
      while (off < t.length) {
        const take = Math.min(batchSize - pendingRows, t.length - off)
        pending.push(slice(t, off, off + take))
        pendingRows += take
        off += take
        if (pendingRows === batchSize) {
          yield concat(pending, schema)
          pending = []
          pendingRows = 0
        }
      }
      if (remaining <= 0) break
    }
    if (pendingRows > 0) yield concat(pending, schema)
  }

  private symbolMajor(_dataset: string): boolean {
    return this.partitionBy[0] === 'symbol'
  }

  private async datasetOrNull(ds: string): Promise<DatasetDoc | null> {
    await this.ensureReadable()
    return this.loadDoc(ds)
  }

  /** Matching rows partition by partition, in read order, with `prefetch` partitions in flight. */
  private async *partitions(
    dataset: string,
    options: DriverRead,
    prefetch = this.ctx.concurrency,
  ): AsyncIterable<{ table: Table; schema: Schema }> {
    const doc = await this.datasetOrNull(dataset)
    const f = options.filter
    if (!doc) return
    const proj = this.projection(doc, options.columns)
    const refs = await findPartitions(this.ctx, doc.name, doc.partitionBy, f)
    const inFlight: Promise<{ table: Table }>[] = []
    let next = 0
    const launch = () => {
      const ref = refs[next++]
      const p = readPartition(this.ctx, doc.name, ref, f, proj.schema, proj.columns)
      // handled now (a later partition may fail while an earlier one is awaited), rethrown when its turn comes
      p.catch(() => undefined)
      inFlight.push(p)
    }
    while (next < refs.length && inFlight.length < prefetch) launch()
    try {
      while (inFlight.length) {
        const { table } = await inFlight.shift()!
        if (next < refs.length) launch()
        if (table.length) yield { table, schema: proj.schema }
      }
    } finally {
      // the consumer stopped early (limit, break, error): the reads it started end before this does
      await Promise.allSettled(inFlight)
    }
  }

  // ---- metadata --------------------------------------------------------------------------

  async listDatasets(): Promise<string[]> {
    await this.ensureReadable()
    // every dataset has its document under `_friday/<dataset>/` (its data directory may be empty)
    const res = await this.ctx.store.list(META_ROOT, { delimiter: '/' })
    const names = res.prefixes.map((p) => p.slice(META_ROOT.length, -1)).filter((n) => isDatasetName(n))
    const present = await allOwned(names.map(async (n) => ((await this.loadDoc(n).catch(() => null)) ? n : null)))
    return present.filter((n): n is string => n !== null).sort()
  }

  private async manifests(ds: string, doc: DatasetDoc, filter: RowFilter = ALL_ROWS): Promise<PartitionManifest[]> {
    const out: PartitionManifest[] = []
    await this.eachManifest(ds, doc, filter, (m) => out.push(m))
    return out.sort((a, b) => (a.partition.path < b.partition.path ? -1 : a.partition.path > b.partition.path ? 1 : 0))
  }

  /**
   * Calls `fn` with each non-empty manifest matching the filter as it loads (in no set order), so
   * a summary over many partitions never holds all their manifests at once.
   */
  private async eachManifest(ds: string, doc: DatasetDoc, f: RowFilter, fn: (m: PartitionManifest) => void): Promise<void> {
    const refs = await findPartitions(this.ctx, ds, doc.partitionBy, f)
    await runAll(refs, this.ctx.concurrency, async (ref) => {
      const m = (await this.ctx.log.load<PartitionManifest>(manifestBase(ds, ref.path))).doc
      if (!m || m.rows === 0 || m.minTs === null || m.maxTs === null) return
      if (m.maxTs < f.start || m.minTs >= f.end) return
      if (f.symbols && !m.files.some((file) => file.symbols.some((s) => f.symbols!.has(s)))) return
      fn(m)
    })
  }

  async describe(dataset: string): Promise<DatasetDescription | null> {
    const doc = await this.datasetOrNull(dataset)
    if (!doc) return null
    const totals = new DescribeTotals()
    await this.eachManifest(doc.name, doc, ALL_ROWS, (m) =>
      totals.add(
        m,
        m.files.flatMap((file) => file.symbols),
        m.files.length,
      ),
    )
    return totals.describe(doc)
  }

  async listPartitions(dataset: string, filter: RowFilter): Promise<PartitionInfo[]> {
    return (await this.snapshot(dataset, filter)).partitions
  }

  /**
   * The listing's manifests, kept: its `read` decodes exactly their files (no manifest loaded
   * again), and answers null when one of those files is gone (see `readIntoOne`'s `pinned`).
   */
  async snapshot(dataset: string, filter: RowFilter): Promise<DriverSnapshot> {
    const doc = await this.datasetOrNull(dataset)
    if (!doc) return { partitions: [], read: async () => emptyTable(KEY_SCHEMA) }
    const ms = await this.manifests(doc.name, doc, filter)
    const partitions = ms.map((m) => ({
      ...m.partition,
      version: m.version,
      rows: m.rows,
      bytes: m.bytes,
      files: m.files.length,
      firstTimestamp: isoOrNull(m.minTs),
      lastTimestamp: isoOrNull(m.maxTs),
    }))
    return { partitions, read: (request) => this.readSnapshot(doc, ms, request) }
  }

  private async readSnapshot(doc: DatasetDoc, ms: PartitionManifest[], request: DriverRead): Promise<Table | null> {
    const proj = this.projection(doc, request.columns)
    if (request.limit === 0) return emptyTable(proj.schema)
    const f = request.filter
    const chosen = ms.filter((m) => {
      const { symbol } = m.partition.values
      if (symbol !== undefined && f.symbols && !f.symbols.has(symbol)) return false
      const [from, to] = timeRangeOf(m.partition.values)
      return from < f.end && to > f.start
    })
    // read order: by symbol (not by its encoded path segment), then by period
    const symbolOf = (m: PartitionManifest) => m.partition.values.symbol ?? ''
    chosen.sort((a, b) => compare(symbolOf(a), symbolOf(b)) || compare(a.partition.path, b.partition.path))
    const t = await readIntoOne(
      this.ctx,
      doc.name,
      chosen.map((m) => m.partition),
      f,
      proj.schema,
      proj.columns,
      chosen,
    )
    if (!t) return null
    const sorted = this.symbolMajor(doc.name) ? t : sortTable(t)
    return sorted.length > request.limit ? slice(sorted, 0, request.limit) : sorted
  }

  async getManifest(dataset: string, partition: Record<string, string> | string): Promise<PartitionManifest | null> {
    const doc = await this.datasetOrNull(dataset)
    if (!doc) return null
    let ref: PartitionRef | null
    if (typeof partition === 'string') {
      const values = parsePath(doc.partitionBy, partition)
      ref = values ? { values, path: pathOf(doc.partitionBy, values) } : null
    } else {
      const ok =
        doc.partitionBy.every((k) => typeof partition[k] === 'string') && Object.keys(partition).length === doc.partitionBy.length
      const values = ok ? Object.fromEntries(doc.partitionBy.map((k) => [k, partition[k]])) : null
      const path = values ? pathOf(doc.partitionBy, values) : null
      ref = path && parsePath(doc.partitionBy, path) ? { values: values!, path } : null
    }
    if (!ref) return null
    return (await this.ctx.log.load<PartitionManifest>(manifestBase(doc.name, ref.path))).doc
  }

  // ---- maintenance -----------------------------------------------------------------------

  async verify(dataset: string | undefined): Promise<VerifyReport> {
    await this.ensureReadable()
    const names = dataset === undefined ? await this.listDatasets() : [dataset]
    const perDataset: { name: string; manifests: PartitionManifest[] }[] = []
    for (const name of names) {
      const doc = await this.loadDoc(name)
      if (doc) perDataset.push({ name, manifests: await this.manifests(name, doc) })
    }
    return verifyLake(this.ctx, perDataset)
  }

  async gc(options: DriverGc): Promise<GcReport> {
    await this.ensureWritable()
    const names = options.dataset === undefined ? await this.listDatasets() : [options.dataset]
    return collectGarbage(this.ctx, names, options.graceMs ?? this.ctx.gcGraceMs, options.dryRun)
  }

  /** Rotation, compaction, archiving, retention and gc under the rotation policy (see `maintain.ts`). */
  async maintain(options: MaintenanceOptions): Promise<MaintenanceReport> {
    if (options.dryRun) await this.ensureReadable()
    else await this.ensureWritable()
    const names = options.dataset === undefined ? await this.listDatasets() : [options.dataset]
    const docs = await allOwned(names.map((n) => this.loadDoc(n, true)))
    return maintainLake(
      this.ctx,
      this.backend,
      this.rotation,
      docs.filter((d): d is DatasetDoc => d !== null),
      options,
    )
  }

  async listArchives(dataset: string, filter: { partition?: string }): Promise<ArchiveEntry[]> {
    const doc = await this.datasetOrNull(dataset)
    if (!doc) return []
    if (filter.partition !== undefined && !parsePath(doc.partitionBy, filter.partition)) return []
    return listArchiveEntries(this.ctx, doc.name, filter.partition)
  }

  async restoreArchive(ds: string, key: string, options: RestoreOptions): Promise<RestoreResult> {
    await this.ensureWritable()
    const doc = await this.loadDoc(ds, true)
    if (!doc) throw new NotFoundError(`dataset '${ds}'`)
    return restoreArchived(this.ctx, ds, key, doc.partitionBy, doc.schema, options)
  }
}
