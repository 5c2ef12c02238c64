/**
 * `withOpLog(storage, oplog)`: the same storage, with one op record per `write`, `read`, `scan`,
 * `delete`, `gc` and `verify` call, and `storage.oplog` set. No backend changes: figures come
 * from each call's result and from `requestStats()` before and after it.
 *
 * - rows: written (`rowsWritten`), returned (`read`, every batch of a `scan`), deleted.
 * - partitions: the paths a write or delete committed, the partition directories gc removed
 *   files from (`<dataset>/<path>` when gc ran over every dataset), the partitions verify found
 *   problems in (`partitionCount`: all it verified). Reads and scans record none (their results
 *   do not say which partitions they came from; counting them would cost work per row) and put
 *   their filter in `details` instead.
 * - bytes: bytes read from plus written to the store during the call (`requestStats()` delta).
 * - requests: the delta of the store's request counters. They are per storage instance, so an
 *   operation that overlapped another one (or an op-log flush) on the same instance counts the
 *   other's requests too: such records carry `details.requestsShared: true`. Records without
 *   the flag are exact.
 * - durationMs: from the call to its result; for `scan`, to the end of the iteration, including
 *   the time the consumer spent between batches. A scan abandoned without `return()` records nothing.
 * - retries: the delta of `requestStats().retries` (lake commits lost to a concurrent writer and
 *   redone, Postgres transactions retried after a deadlock); 0 where a backend does not count them
 *   (MongoDB). Shared between overlapping calls like the request counts.
 * - outcome/error: a rejected call records `error` with the `StorageError` code (else
 *   `internal_error`) and re-throws unchanged. A `verify` that finds problems records
 *   `error`/`verify_failed` (it succeeded, but the data did not).
 *
 * Catalog calls (`listDatasets`, `describe`, `listPartitions`, `getManifest`) are not recorded.
 * Everything else on the storage, including optional capabilities added later, passes through
 * unchanged (a `Proxy`), so wrapping never hides a method.
 */

import type { OpKind, OpRecord } from '../core/oplog-types.js'
import { overlay } from '../core/overlay.js'
import type {
  DataStorage,
  DeleteOptions,
  GcOptions,
  InputColumns,
  InputRow,
  ReadOptions,
  ScanOptions,
  StoreRequestStats,
  Table,
  WriteOptions,
} from '../core/types.js'
import type { BufferedOpLog } from './buffered-op-log.js'
import { errorOf, MAX_RECORD_PARTITIONS, newOpRecord } from './records.js'

/** Symbols listed in a read record's `details` (more are counted). */
const MAX_DETAIL_SYMBOLS = 20

type Figures = Partial<Pick<OpRecord, 'rows' | 'partitions' | 'partitionCount' | 'outcome' | 'error' | 'details'>>

interface Started {
  op: OpKind
  dataset: string | null
  at: number
  t0: number
  before: StoreRequestStats
  end: () => boolean
}

/** `storage` with `oplog` attached and its operations recorded into it. */
export function withOpLog<T extends DataStorage>(storage: T, oplog: BufferedOpLog): T {
  const start = (op: OpKind, dataset: string | null): Started => ({
    op,
    dataset,
    at: oplog.now(),
    t0: performance.now(),
    before: storage.requestStats(),
    end: oplog.activity.begin(),
  })

  const finish = (s: Started, figures: Figures, extra?: Record<string, unknown>): void => {
    const shared = s.end()
    const after = storage.requestStats()
    const b = s.before
    const details = { ...extra, ...figures.details, ...(shared ? { requestsShared: true } : {}) }
    oplog.record(
      newOpRecord(s.op, {
        startedAt: s.at,
        dataset: s.dataset,
        ...figures,
        bytes: after.bytesRead - b.bytesRead + (after.bytesWritten - b.bytesWritten),
        durationMs: Math.round((performance.now() - s.t0) * 1000) / 1000,
        retries: (after.retries ?? 0) - (b.retries ?? 0),
        requests: {
          get: after.get - b.get,
          put: after.put - b.put,
          list: after.list - b.list,
          delete: after.delete - b.delete,
          head: after.head - b.head,
        },
        details: Object.keys(details).length ? details : undefined,
      }),
    )
  }

  async function capture<R>(
    op: OpKind,
    dataset: string | null,
    call: () => Promise<R>,
    figures: (result: R) => Figures,
    details?: Record<string, unknown>,
  ): Promise<R> {
    const s = start(op, dataset)
    let result: R
    try {
      result = await call()
    } catch (err) {
      finish(s, { outcome: 'error', error: errorOf(err) }, details)
      throw err
    }
    finish(s, figures(result), details)
    return result
  }

  const overrides: Partial<DataStorage> & { oplog: BufferedOpLog } = {
    oplog,

    write: (dataset: string, data: InputRow[] | InputColumns | Table, options?: WriteOptions) =>
      capture(
        'write',
        dataset,
        () => storage.write(dataset, data, options),
        (r) => ({ rows: r.rowsWritten, partitions: r.partitions.map((p) => p.path) }),
        { mode: options?.mode ?? 'upsert' },
      ),

    read: (dataset: string, options?: ReadOptions) =>
      capture(
        'read',
        dataset,
        () => storage.read(dataset, options),
        (t) => ({ rows: t.length }),
        filterDetails(options),
      ),

    scan: (dataset: string, options?: ScanOptions): AsyncIterable<Table> => ({
      async *[Symbol.asyncIterator]() {
        const s = start('scan', dataset)
        let rows = 0
        let error: unknown
        let failed = false
        try {
          for await (const batch of storage.scan(dataset, options)) {
            rows += batch.length
            yield batch
          }
        } catch (err) {
          failed = true
          error = err
          throw err
        } finally {
          const figures: Figures = failed ? { rows, outcome: 'error', error: errorOf(error) } : { rows }
          finish(s, figures, filterDetails(options))
        }
      },
    }),

    delete: (dataset: string, options?: DeleteOptions) =>
      capture(
        'delete',
        dataset,
        () => storage.delete(dataset, options),
        (r) => ({ rows: r.rowsDeleted, partitions: r.partitions.map((p) => p.path) }),
        filterDetails(options),
      ),

    gc: (options?: GcOptions) =>
      capture(
        'gc',
        options?.dataset ?? null,
        () => storage.gc(options),
        (r) => {
          const dirs = new Set<string>()
          for (const key of r.keys) {
            const dir = key.slice(0, key.lastIndexOf('/'))
            dirs.add(options?.dataset !== undefined ? dir.slice(options.dataset.length + 1) : dir)
          }
          const partitions = [...dirs].sort()
          return {
            partitions,
            partitionCount: partitions.length,
            details: { filesDeleted: r.filesDeleted, bytesDeleted: r.bytesDeleted, keys: r.keys.length },
          }
        },
        { dryRun: options?.dryRun ?? false, ...(options?.graceMs !== undefined ? { graceMs: options.graceMs } : {}) },
      ),

    verify: (dataset?: string) =>
      capture(
        'verify',
        dataset ?? null,
        () => storage.verify(dataset),
        (r) => {
          const broken = [
            ...new Set(r.problems.map((p) => (dataset === undefined ? `${p.dataset}/${p.partition}` : p.partition))),
          ]
          const first = r.problems[0]
          return {
            partitions: broken.slice(0, MAX_RECORD_PARTITIONS),
            partitionCount: r.partitions,
            details: { ok: r.ok, datasets: r.datasets, files: r.files, verifiedBytes: r.bytes, problems: r.problems.length },
            ...(r.ok
              ? {}
              : {
                  outcome: 'error' as const,
                  error: {
                    code: 'verify_failed',
                    message: `${r.problems.length} problem(s), first: ${first ? `${first.dataset}/${first.partition}: ${first.message}` : 'unknown'}`,
                  },
                }),
          }
        },
      ),

    close: async () => {
      try {
        await oplog.close()
      } finally {
        await storage.close()
      }
    },
  }

  return overlay(storage, overrides)
}

/** A read or delete filter as record details: symbols listed up to 20, else counted. */
function filterDetails(o?: ReadOptions & ScanOptions): Record<string, unknown> | undefined {
  if (!o) return undefined
  const out: Record<string, unknown> = {}
  if (o.symbols) out.symbols = o.symbols.length <= MAX_DETAIL_SYMBOLS ? o.symbols : `${o.symbols.length} symbols`
  if (o.start !== undefined) out.start = timeDetail(o.start)
  if (o.end !== undefined) out.end = timeDetail(o.end)
  if (o.columns) out.columns = o.columns.length
  if (o.limit !== undefined) out.limit = o.limit
  return Object.keys(out).length ? out : undefined
}

function timeDetail(t: Date | number | string): string | number {
  return t instanceof Date ? t.toISOString() : t
}
