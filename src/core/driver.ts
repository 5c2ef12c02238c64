/**
 * What a backend implements: the storage contract's work, with every argument already checked
 * and normalized by the front (`createDataStorage` in `front.ts`). A driver never re-checks a
 * dataset name, a write mode, a time unit, a filter, a limit or a batch size; it keeps the checks
 * only it can make (a column unknown to the dataset's schema, a value its store cannot hold).
 */

import type { TimeSymbolFilter } from './filter.js'
import type { OpLogStore } from './oplog-types.js'
import type { TimeUnit } from './time.js'
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
  RestoreOptions,
  RestoreResult,
  StoreRequestStats,
  Table,
  VerifyReport,
  WriteMode,
  WriteResult,
} from './types.js'

/** A checked write: the mode (default applied) and the unit of epoch numbers, when given. */
export interface DriverWrite {
  mode: WriteMode
  /**
   * A checked unit; the driver converts the input with it (`applyTimeUnit`) as it normalizes the
   * batch against the dataset's schema. Absent: epoch milliseconds.
   */
  timeUnit?: TimeUnit
}

/** A checked read. */
export interface DriverRead {
  /** Symbols and the [start, end) range in epoch µs, parsed; `end >= start`. */
  filter: TimeSymbolFilter
  /**
   * Column names besides the keys (an array of strings), or absent for all. A name the dataset
   * does not have is the driver's to refuse (`projectSchema`): only it knows the schema.
   */
  columns?: string[]
  /** Whole rows to return at most: an integer >= 0, or `Infinity` for no limit. */
  limit: number
}

/** A checked scan: a read plus the rows per batch. */
export interface DriverScan extends DriverRead {
  /** An integer >= 1: the caller's, else `retrieval.batchSize`, else `DEFAULT_SCAN_BATCH`. */
  batchSize: number
}

/** What a driver's `snapshot` gives: the listed partitions and a read of exactly their listed versions. */
export interface DriverSnapshot {
  /** Non-empty partitions overlapping the snapshot's filter, sorted by path, as `listPartitions` answers. */
  readonly partitions: PartitionInfo[]
  /**
   * Matching rows of the listed partitions at the listed versions, as `read` orders and limits
   * them; `null` when a file of a listed version is gone (never a partial table).
   */
  read(request: DriverRead): Promise<Table | null>
}

/** A checked `gc()`. */
export interface DriverGc {
  /** A checked dataset name, or absent for every dataset. */
  dataset?: string
  /** A number >= 0 when the caller gave one; absent: the driver's configured grace period. */
  graceMs?: number
  dryRun: boolean
}

/**
 * A backend. Every `dataset` argument is a checked name (`checkDatasetName`). Answers follow
 * `DataStorage` (`types.ts`), including what comes back when nothing is there.
 */
export interface StorageDriver {
  /** Backend name, e.g. `local_parquet`. */
  readonly backend: string

  /** Validates the rows against the dataset (nothing stored if any is bad), then commits them. Empty batch: `{ rowsWritten: 0, partitions: [] }`. */
  write(dataset: string, data: InputRow[] | InputColumns | Table, request: DriverWrite): Promise<WriteResult>

  /** Matching rows sorted by (symbol, timestamp), at most `limit`. Unknown dataset: an empty table with the key columns. */
  read(dataset: string, request: DriverRead): Promise<Table>

  /** The rows `read` would return, in batches of at most `batchSize`. Unknown dataset: no batches. */
  scan(dataset: string, request: DriverScan): AsyncIterable<Table>

  /** Deletes the rows inside `filter`. Unknown dataset: `{ rowsDeleted: 0, partitions: [] }`. */
  delete(dataset: string, filter: TimeSymbolFilter): Promise<DeleteResult>

  /** Dataset names, sorted. None: `[]`. */
  listDatasets(): Promise<string[]>

  /** Summary of a dataset; `null` when it does not exist. */
  describe(dataset: string): Promise<DatasetDescription | null>

  /** Non-empty partitions overlapping `filter`, sorted by path. Unknown dataset: `[]`. */
  listPartitions(dataset: string, filter: TimeSymbolFilter): Promise<PartitionInfo[]>

  /**
   * Optional: `listPartitions`'s answer and a read of exactly those partitions at the listed
   * versions, without loading their metadata again (see `DataStorage.snapshot`).
   */
  snapshot?(dataset: string, filter: TimeSymbolFilter): Promise<DriverSnapshot>

  /** One partition's manifest by values or hive path (the driver parses it against the dataset's partitioning); `null` when absent. */
  getManifest(dataset: string, partition: Record<string, string> | string): Promise<PartitionManifest | null>

  /** Checks one dataset (a checked name) or all (`undefined`). Nothing stored: a report of zeros, `ok: true`. */
  verify(dataset: string | undefined): Promise<VerifyReport>

  /** Removes what no commit references, older than the grace period. Nothing to collect: zeros. */
  gc(request: DriverGc): Promise<GcReport>

  /** Requests made to the underlying store since creation. */
  requestStats(): StoreRequestStats

  /** Releases clients and handles; calls after it fail with `ClosedError`. */
  close(): Promise<void>

  /**
   * Optional: the backend's own maintenance run (`options.dataset` checked). Absent: the front
   * offers the fallback it was given (row retention for the database backends), or none.
   */
  maintain?(options: MaintenanceOptions): Promise<MaintenanceReport>

  /** Optional: archived files of a dataset, oldest first. Unknown dataset: `[]`. */
  listArchives?(dataset: string, filter: { partition?: string }): Promise<ArchiveEntry[]>

  /** Optional: brings an archived file back; `NotFoundError` for an unknown key or dataset. */
  restoreArchive?(dataset: string, key: string, options: RestoreOptions): Promise<RestoreResult>

  /** Optional: where the op log is kept durably through this backend's client. */
  opLogStore?(): OpLogStore
}
