/**
 * The storage contract: every backend (local Parquet, S3 Parquet, and later Postgres and
 * MongoDB) implements `DataStorage` with exactly these semantics. The conformance suite in
 * `test/conformance/` is the executable form of this file.
 */

import type { OpLog, OpLogStore, OpSink } from './oplog-types.js'

/** Logical column types. `symbol` is always `string`, `timestamp` always `timestamp`. */
export type ColumnType = 'timestamp' | 'float64' | 'int64' | 'string' | 'boolean'

export interface ColumnSchema {
  name: string
  type: ColumnType
}

/** Ordered columns; the first two are always `symbol: string` and `timestamp: timestamp`. */
export type Schema = ColumnSchema[]

/**
 * One column of a table, stored columnar. Null encodings (input NaN/Infinity is rejected, so
 * NaN can only mean "missing"):
 * - `float64`: `Float64Array`, NaN = null.
 * - `timestamp`: `Float64Array` of epoch **microseconds** (exact integers), NaN = null.
 * - `int64`: `BigInt64Array`; `nulls[i] === 1` marks a null (absent `nulls` = no nulls).
 * - `boolean`: `Uint8Array`, 0 = false, 1 = true, `BOOL_NULL` (255) = null.
 * - `string`: plain array, `null` = null.
 */
export type Column =
  | { type: 'float64'; values: Float64Array }
  | { type: 'timestamp'; values: Float64Array }
  | { type: 'int64'; values: BigInt64Array; nulls?: Uint8Array }
  | { type: 'boolean'; values: Uint8Array }
  | { type: 'string'; values: (string | null)[] }

export const BOOL_NULL = 255

/** A columnar table. Every column has `length` entries. */
export interface Table {
  length: number
  schema: Schema
  columns: Record<string, Column>
}

/** A row as accepted on input. The time column may be named `timestamp`, `datetime` or `date`. */
export type InputRow = Record<string, unknown>

/**
 * Columnar input: one array (or typed array) per column, all the same length. Time values
 * follow the row rules (epoch ms numbers, ISO strings, Dates). A `Table` (as returned by
 * `read`) is also accepted and round-trips exactly.
 */
export type InputColumns = Record<string, ArrayLike<unknown>>

export type WriteMode = 'upsert' | 'append' | 'replace'

export interface WriteOptions {
  /**
   * - `upsert` (default): key = (symbol, timestamp); the later write wins; re-sending a batch
   *   changes nothing.
   * - `append`: rejects the batch if any key already exists with other values; the error
   *   lists the conflicting keys. A key already holding exactly the batch's row is no conflict
   *   (so re-sending an append whose outcome was unknown is safe): that row is left as it is.
   *   A batch refused by the check made before writing stores nothing. Across partitions an
   *   append is not atomic: a conflict created by another writer meanwhile can refuse one
   *   partition after others committed; the error's `details.written` then lists them.
   * - `replace`: for each symbol in the batch, deletes stored rows with
   *   `batchMin <= timestamp <= batchMax` (the whole batch's time range), then writes the batch.
   */
  mode?: WriteMode
  /**
   * Unit of epoch numbers (and BigInts) in the time column: `'s'`, `'ms'` (the default), `'us'`
   * or `'ns'`. Read exactly from the number's decimal form: a value that is not a whole
   * microsecond (a nanosecond count not a multiple of 1000, a fraction below the µs) or outside
   * the accepted range is a `ValidationError` naming row and field, never rounded. ISO strings,
   * Dates and Tables are not affected.
   */
  timeUnit?: 's' | 'ms' | 'us' | 'ns'
}

export interface PartitionRef {
  /** Partition values, e.g. `{ symbol: 'AAPL', date: '2024-01-02' }`. */
  values: Record<string, string>
  /** Hive path relative to the dataset, e.g. `symbol=AAPL/date=2024-01-02`. */
  path: string
}

export interface WriteResult {
  /** Rows in the batch after in-batch de-duplication (upsert: last row per key wins). */
  rowsWritten: number
  /** Partitions committed, in commit order. */
  partitions: PartitionRef[]
}

export interface ReadOptions {
  symbols?: string[]
  /** Inclusive lower bound: Date, epoch ms, or ISO-8601 string. */
  start?: Date | number | string
  /** Exclusive upper bound: Date, epoch ms, or ISO-8601 string. Before `start`: a `ValidationError` on `end` (equal to it: an empty range). */
  end?: Date | number | string
  /** Columns to return besides the key columns `symbol` and `timestamp` (always returned). */
  columns?: string[]
  /** At most this many rows, the first in (symbol, timestamp) order. */
  limit?: number
}

export interface ScanOptions extends ReadOptions {
  /** Maximum rows per yielded batch (default: `storage.retrieval.batchSize`, 10,000 from `createStorage`; else 65,536). */
  batchSize?: number
}

export interface DeleteOptions {
  symbols?: string[]
  start?: Date | number | string
  end?: Date | number | string
}

export interface DeleteResult {
  rowsDeleted: number
  partitions: PartitionRef[]
}

export interface PartitionFilter {
  symbols?: string[]
  start?: Date | number | string
  end?: Date | number | string
}

export interface ColumnStats {
  /** Min/max as JSON values: numbers, strings, booleans; int64 as decimal strings; timestamps as ISO strings. */
  min: number | string | boolean | null
  max: number | string | boolean | null
  nulls: number
}

/** One live data file of a partition. */
export interface ManifestFile {
  /** File name inside the partition directory, e.g. `part-01J....parquet`. */
  name: string
  rows: number
  bytes: number
  /** Epoch microseconds, inclusive. */
  minTs: number
  maxTs: number
  /** `sha256:<hex>` of the file's bytes. */
  checksum: string
  columns: Record<string, ColumnStats>
  /** Symbols present in the file (sorted). */
  symbols: string[]
  createdAt: string
}

/** The manifest of one partition: the only source of truth for which files are live. */
export interface PartitionManifest {
  format: 'friday.partition-manifest'
  formatVersion: 1
  dataset: string
  partition: PartitionRef
  /** Starts at 1; every commit increases it by exactly 1. */
  version: number
  /** Unique id of the commit that produced this version. */
  commitId: string
  /**
   * Commit ids of the versions before this one, newest first (a bounded window): how a writer
   * whose commit answer was lost learns that it landed after others committed on top.
   */
  prior?: string[]
  committedAt: string
  schema: Schema
  files: ManifestFile[]
  rows: number
  bytes: number
  /** Epoch microseconds; null when the partition is empty. */
  minTs: number | null
  maxTs: number | null
}

export interface DatasetDescription {
  name: string
  schema: Schema
  partitionBy: string[]
  symbols: string[]
  /**
   * The oldest row's timestamp, ISO-8601 UTC; null when empty. Named apart from the `start`
   * filter of reads (inclusive bound of a query), which this is not.
   */
  firstTimestamp: string | null
  /** The newest row's timestamp (inclusive: a row has it), ISO-8601 UTC; null when empty. Unlike a read's exclusive `end`. */
  lastTimestamp: string | null
  rows: number
  bytes: number
  partitions: number
  files: number
}

export interface PartitionInfo extends PartitionRef {
  version: number
  rows: number
  bytes: number
  files: number
  /** The partition's oldest row's timestamp, ISO-8601 UTC; null when empty. */
  firstTimestamp: string | null
  /** The partition's newest row's timestamp (inclusive), ISO-8601 UTC; null when empty. */
  lastTimestamp: string | null
}

export interface VerifyProblem {
  dataset: string
  partition: string
  file?: string
  problem: 'missing-file' | 'checksum-mismatch' | 'row-count-mismatch' | 'unreadable' | 'size-mismatch'
  message: string
}

export interface VerifyReport {
  ok: boolean
  datasets: number
  partitions: number
  files: number
  bytes: number
  problems: VerifyProblem[]
}

export interface GcOptions {
  /** Files unreferenced for at least this long are removed (default: the configured grace period). */
  graceMs?: number
  dataset?: string
  dryRun?: boolean
}

export interface GcReport {
  filesDeleted: number
  bytesDeleted: number
  /** Keys removed (or that would be removed with `dryRun`). */
  keys: string[]
}

/** Request counts against the underlying store, by kind. */
export interface StoreRequestStats {
  get: number
  put: number
  head: number
  list: number
  delete: number
  bytesRead: number
  bytesWritten: number
  /**
   * Work redone because of contention, when the backend counts it: lake partition commits lost
   * to a concurrent writer (or re-planned after a file vanished) and tried again; Postgres
   * transactions retried after a deadlock or serialization failure.
   */
  retries?: number
}

/** Options of `maintain()` (rotation, compaction, archiving, retention and gc in one run). */
export interface MaintenanceOptions {
  /** Only this dataset (default: every dataset). */
  dataset?: string
  /** Decide and report, change nothing. */
  dryRun?: boolean
  /** Receives one op-log record per step (rotate, compact, archive, retention, gc) and one `maintain` summary. */
  sink?: OpSink
  /** Clock for age decisions (file ages, archive, row and orphan retention), epoch ms. Default `Date.now`. */
  now?: () => number
  /**
   * Who runs the job (default: a random id per call). A run whose lease is still held by the
   * same owner takes it over at once: a restarted job resumes without waiting for the lease to
   * expire. Each run still has its own id, and the run it took over can no longer commit.
   */
  owner?: string
  /**
   * How long a run's dataset lease outlives it if it stops renewing (crash, stall): default 10
   * minutes. A run renews it as it goes and checks it right before every commit.
   */
  leaseTtlMs?: number
  /** Called as partitions are processed (for progress bars). */
  onProgress?: (progress: { dataset: string; done: number; total: number }) => void
}

/** One partition compaction rewrote (or would rewrite, in a dry run). */
export interface CompactedPartition {
  partition: string
  /** The policy threshold that triggered it, e.g. `count_based: 12 files > max_files 10`. */
  reason: string
  filesBefore: number
  filesAfter: number
  bytesBefore: number
  bytesAfter: number
  rows: number
}

/** What one `maintain()` run did to one dataset. */
export interface DatasetMaintenance {
  dataset: string
  /** Set when the whole dataset was skipped (e.g. `lease held by <owner> until <time>`). */
  skipped: string | null
  partitionsChecked: number
  compacted: CompactedPartition[]
  /** Partitions looked at and left alone, with why (`under threshold: 3 files <= max_files 10`, `lost a race`...). Only those over no threshold are counted, not listed. */
  partitionsSkipped: { partition: string; reason: string }[]
  /** Compactions a crashed run had committed and this run finished archiving. */
  resumed: number
  archivesWritten: number
  archiveBytesWritten: number
  archivesRemoved: number
  /** Rows removed by `row_retention_days`. */
  rowsExpired: number
  /** Unreferenced data files removed (older than the gc grace period). */
  orphansRemoved: number
  /**
   * MongoDB: partitions whose metadata a writer that died (between its rows and its metadata
   * commit) left behind, recomputed from their rows and committed (intents older than the gc
   * grace period). Always 0 on the other backends, whose commits are atomic.
   */
  partitionsRepaired: number
  errors: { partition: string | null; message: string }[]
}

export interface MaintenanceReport {
  backend: string
  dryRun: boolean
  startedAt: string
  durationMs: number
  datasets: DatasetMaintenance[]
  totals: {
    partitionsCompacted: number
    /** Input files of the compactions. */
    filesMerged: number
    filesWritten: number
    bytesBefore: number
    bytesAfter: number
    archivesWritten: number
    archivesRemoved: number
    rowsExpired: number
    orphansRemoved: number
    partitionsRepaired: number
    partitionsSkipped: number
  }
}

/** A data file moved to the archive area by compaction or retention. */
export interface ArchiveEntry {
  /** Store key of the archived object (`<dataset>/_archive/<partition>/<name>[.gz|.zst]`); pass it to `restoreArchive`. */
  key: string
  dataset: string
  /** Hive path of the partition the file came from. */
  partition: string
  /** The file's name while it was live. */
  originalName: string
  archivedAt: string
  reason: 'compaction' | 'retention'
  codec: 'gzip' | 'zstd' | 'none'
  /** Size and `sha256:` checksum of the original Parquet bytes (as in its manifest entry). */
  bytes: number
  checksum: string
  /** Size of the stored (compressed) object. */
  storedBytes: number
  rows: number
  /** The file's manifest entry while it was live. */
  file: ManifestFile
}

export interface RestoreOptions {
  /**
   * Write the original Parquet bytes to this store key instead (e.g. `restored/part-X.parquet`,
   * outside any dataset's partitions); the partition is not touched. Fails if the key exists.
   */
  to?: string
}

export interface RestoreResult {
  entry: ArchiveEntry
  /** Rows that came back as live rows (keys the partition did not hold); 0 with `to`. */
  rowsRestored: number
  /** Where the file went: the new live file's key, or `to`. */
  key: string
}

export interface DataStorage {
  /** Backend name, e.g. `local_parquet`. */
  readonly backend: string

  /**
   * Validates the whole batch first (nothing is written if any row is bad: `ValidationError`
   * naming row index and field), then commits it partition by partition. Each partition
   * commit is atomic: readers see all of its rows or none. A write spanning several
   * partitions may be observed partially while it runs. An empty batch is a no-op returning
   * `{ rowsWritten: 0, partitions: [] }`.
   */
  write(dataset: string, data: InputRow[] | InputColumns | Table, options?: WriteOptions): Promise<WriteResult>

  /**
   * Rows matching the filter, sorted by symbol then timestamp; `start` inclusive, `end`
   * exclusive. An unknown dataset or an empty range gives an empty table (length 0).
   */
  read(dataset: string, options?: ReadOptions): Promise<Table>

  /**
   * The same rows as `read`, in the same order, as batches of at most `batchSize` rows.
   * Memory stays bounded by one partition plus one batch. Unknown dataset: no batches.
   */
  scan(dataset: string, options?: ScanOptions): AsyncIterable<Table>

  /** Deletes matching rows. No filter deletes the whole dataset's rows. Unknown dataset: 0 rows. */
  delete(dataset: string, options?: DeleteOptions): Promise<DeleteResult>

  /** Dataset names, sorted. None: `[]`. */
  listDatasets(): Promise<string[]>

  /** Summary of a dataset, or `null` if it does not exist. */
  describe(dataset: string): Promise<DatasetDescription | null>

  /** Non-empty partitions matching the filter, sorted by path. Unknown dataset: `[]`. */
  listPartitions(dataset: string, filter?: PartitionFilter): Promise<PartitionInfo[]>

  /**
   * Optional capability: the partitions `listPartitions(dataset, filter)` lists, and a `read` of
   * exactly those partitions at exactly the listed versions, without loading their metadata again
   * (lake: the manifests are loaded once, by the listing). The read cache uses it so that a miss
   * reads the versions that tag its entries (`withReadCache`); without it, it lists and then reads.
   */
  snapshot?(dataset: string, filter?: PartitionFilter): Promise<ReadSnapshot>

  /**
   * The current manifest of one partition, given its values (e.g. `{ symbol, date }`) or its
   * hive path. `null` when the partition does not exist.
   */
  getManifest(dataset: string, partition: Record<string, string> | string): Promise<PartitionManifest | null>

  /** Re-reads every live file (of one dataset, or all) and checks size, checksum and row count. */
  verify(dataset?: string): Promise<VerifyReport>

  /** Removes data files no manifest references, once older than the grace period. */
  gc(options?: GcOptions): Promise<GcReport>

  /** Requests made to the underlying store since creation. */
  requestStats(): StoreRequestStats

  /**
   * Optional capability: one maintenance run under the configured `file_rotation` policy.
   * Parquet lakes: compact partitions over their threshold (archiving the replaced files), finish
   * compactions a crashed run left, delete archives and rows past their retention, gc orphans.
   * Database backends: row retention only. Safe to run concurrently (a per-dataset lease: the
   * second run skips the dataset and says so). Nothing to do: a report of zeros.
   */
  maintain?(options?: MaintenanceOptions): Promise<MaintenanceReport>

  /** Optional capability: archived files of a dataset (optionally of one partition path), oldest first. Unknown dataset: `[]`. */
  listArchives?(dataset: string, filter?: { partition?: string }): Promise<ArchiveEntry[]>

  /**
   * Optional capability: brings an archived file back. By default its rows return to their
   * partition through a manifest commit, for keys the partition does not hold now (current rows
   * win; the archive entry stays). With `to`, the original bytes go to that key instead.
   * `NotFoundError` for an unknown key.
   */
  restoreArchive?(dataset: string, key: string, options?: RestoreOptions): Promise<RestoreResult>

  /** Releases clients and handles. Further calls fail. */
  close(): Promise<void>

  /**
   * Optional capability of a backend: where it keeps the operation log durably, through its own
   * client (lake: NDJSON batches under `_oplog/`; postgres: the `friday_oplog` table; mongodb:
   * the `friday_oplog` collection). Absent: an attached op log is kept in memory only.
   */
  opLogStore?(): OpLogStore

  /**
   * The operation log attached to this storage (set by `withOpLog`, which `createStorage` applies
   * when `storage.metadata_logging.enabled`); absent when none is attached. Maintenance jobs
   * report through `oplog.record(...)`.
   */
  readonly oplog?: OpLog

  /**
   * The read cache in front of `read()` (set by `withReadCache`, which `createStorage` applies when
   * `storage.read_cache.enabled`); absent when reads are not cached.
   */
  readonly readCache?: ReadCacheControl

  /**
   * Retrieval defaults set by `createStorage` (`storage.retrieval`): rows per `scan()` batch when
   * the caller names none, and symbols the training functions load at once. Absent: 65,536-row
   * batches and 4 symbols.
   */
  readonly retrieval?: RetrievalDefaults
}

/** The partitions of a dataset at one moment, and their rows at exactly those versions (`DataStorage.snapshot`). */
export interface ReadSnapshot {
  /** What `listPartitions` answered when the snapshot was taken (non-empty partitions, sorted by path). Unknown dataset: `[]`. */
  readonly partitions: PartitionInfo[]
  /**
   * The rows `read(dataset, options)` returns (same filter rules, columns, order and `limit`),
   * taken only from the listed partitions, each at its listed version: a partition outside the
   * snapshot contributes nothing, a commit after the snapshot is not seen. The schema is the
   * dataset's when the snapshot was taken. Unknown dataset: an empty table with the key columns.
   * `null` when a file of a listed version is gone (replaced by a compaction or a rewrite and
   * removed): the snapshot can no longer be read, never partly; take a new one (or `read`).
   */
  read(options?: ReadOptions): Promise<Table | null>
}

/** `storage.retrieval` as the storage applies it. */
export interface RetrievalDefaults {
  /** Rows per `scan()` batch when `ScanOptions.batchSize` is not given. */
  batchSize: number
  /** Symbols read at once by `loadSymbols` and the training functions (1: no parallel loading). */
  concurrency: number
}

/** Counters since the cache was created (`clear()` drops entries, not counters). */
export interface ReadCacheStats {
  enabled: true
  /** Entries held now (expired ones are purged first). */
  entries: number
  /** Their estimated size. Never above `maxBytes`. */
  bytes: number
  maxBytes: number
  ttlMs: number
  /** Partition lookups answered from the cache. */
  hits: number
  /** Partition lookups that had to read from the storage (absent, expired or invalidated entry). */
  misses: number
  /** Entries dropped to stay under `maxBytes`. */
  evictions: number
  /** Entries dropped because they were older than `ttlMs`. */
  expirations: number
  /**
   * Entries dropped because their partition changed: found with another version than the
   * partition has now, or dropped by a write or delete through the wrapper.
   */
  invalidations: number
  /** hits / (hits + misses); 0 before the first lookup. */
  hitRate: number
}

/** What `storage.readCache` offers callers (`ReadCache` in `src/cache` implements it). */
export interface ReadCacheControl {
  readonly ttlMs: number
  readonly maxBytes: number
  stats(): ReadCacheStats
  /** Drops the entries of these partitions of `dataset`. */
  invalidate(dataset: string, paths: Iterable<string>): void
  /** Drops every entry (counters are kept). */
  clear(): void
}
