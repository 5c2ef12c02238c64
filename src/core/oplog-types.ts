/**
 * The operation log's contract: what one storage operation records, and the sink that takes
 * records. Storage backends, maintenance jobs and the HTTP layer all report through `OpSink`;
 * where records are kept (batched, in the active backend) and for how long is the op log's job.
 */

export const OP_KINDS = [
  'write',
  'read',
  'scan',
  'delete',
  'rotate',
  'compact',
  'archive',
  'restore',
  'retention',
  'gc',
  'verify',
  'maintain',
] as const

/** Operation kinds. Maintenance kinds are reported by the maintenance runner, one record per step. */
export type OpKind = (typeof OP_KINDS)[number]

/** Requests the operation made to the underlying store (object store requests or SQL statements), by kind. */
export interface OpRequests {
  get: number
  put: number
  list: number
  delete: number
  head: number
}

export interface OpRecord {
  /** Sortable unique id (ULID). */
  id: string
  op: OpKind
  /** ISO-8601 UTC time the operation started. */
  at: string
  dataset: string | null
  /** Partition paths touched (may be truncated for very wide operations; see `partitionCount`). */
  partitions: string[]
  partitionCount: number
  rows: number
  bytes: number
  durationMs: number
  requests: OpRequests
  /** Commit retries (lost races, retried store calls). */
  retries: number
  outcome: 'ok' | 'error'
  /** `status`: the HTTP status the error maps to (4xx: the input was refused; 5xx or absent: the operation failed). */
  error: { code: string; message: string; status?: number } | null
  /** Operation-specific figures (e.g. files merged, bytes saved for `compact`). */
  details?: Record<string, unknown>
}

/** Takes records; never throws and never blocks the operation that reports. */
export interface OpSink {
  record(record: OpRecord): void
}

/** A filter over stored records. Times are epoch milliseconds; `since` inclusive, `until` exclusive. */
export interface OpLogQuery {
  since?: number
  until?: number
  dataset?: string
  op?: OpKind
  /** At most this many records, the newest that match. */
  limit: number
}

/**
 * Where a backend keeps op records durably, in its own store and through its own client: an
 * optional capability of `DataStorage` (`opLogStore()`). One `append` is one stored object or
 * one statement, whatever the batch size.
 */
export interface OpLogStore {
  /** Stores a batch of records (in any order). Storing a record twice keeps one copy or is de-duplicated by `query`. */
  append(records: OpRecord[]): Promise<void>
  /** Matching records, newest first (by `at`, then `id`), at most `limit`; none stored: `[]`. */
  query(query: OpLogQuery): Promise<OpRecord[]>
  /** Removes every record whose `at` is before `cutoff` (epoch ms) and nothing else; returns how many. */
  removeBefore(cutoff: number): Promise<number>
}

/** Per-operation figures since the op log started (this process or isolate). */
export interface OpSummaryEntry {
  ok: number
  error: number
  /** Nearest-rank percentiles of `durationMs`; null when nothing was timed (or `log_performance` is off). */
  p50Ms: number | null
  p99Ms: number | null
}

export interface OpLogSummary {
  enabled: true
  startedAt: string
  /** Records accepted by the levels, stored or not yet stored. */
  recorded: number
  /** Records stored durably by this instance. */
  flushed: number
  /** Records waiting for the next flush (including one in progress). */
  pending: number
  /** Records dropped because the store kept failing and the buffer was full. */
  dropped: number
  /** Batches written (objects or statements). */
  batches: number
  /** The last flush or retention failure, if the latest attempt failed. */
  lastError: { code: string; message: string; at: string } | null
  operations: Partial<Record<OpKind, OpSummaryEntry>>
}

/**
 * The op log attached to a storage (`DataStorage.oplog`): a sink that applies the configured
 * levels, buffers records and stores them in batches, plus reads, retention and a summary.
 */
export interface OpLog extends OpSink {
  /** Flushed and not-yet-flushed records matching the query, newest first. */
  query(query: OpLogQuery): Promise<OpRecord[]>
  /** Stores what is buffered now; resolves when it is stored (or the attempt failed and was logged). Never rejects. */
  flush(): Promise<void>
  /**
   * For runtimes that end work with the request (Workers: `ctx.waitUntil(oplog.settle())`):
   * waits until the buffered batch is due (at most the flush interval), then flushes it.
   * Resolves at once when nothing is buffered. Never rejects.
   */
  settle(): Promise<void>
  /**
   * Removes stored records older than `retention_days` (by the op log's clock); returns how many.
   * Rejects when the store fails (the op log's own periodic run logs the failure instead).
   */
  applyRetention(): Promise<number>
  summary(): OpLogSummary
  /** Flushes and stops the timer; later records are dropped. */
  close(): Promise<void>
}
