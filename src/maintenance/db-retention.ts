/**
 * Maintenance of database backends without a `maintain()` of their own (`postgres`; `mongodb`
 * has its own): they keep rows, not files, so rotation and compaction mean nothing there and only
 * row retention applies, to rows older than `row_retention_days` (by timestamp).
 *
 * - A backend with exact retention (`expireRows`, see `ExactRowRetention`: postgres) does it
 *   itself: each batch it archives goes to `_friday/<dataset>/_archive/rows/<name>.parquet[.gz|.zst]` in
 *   the configured object store (when there is one) under the name it gives, and the archives
 *   hold exactly the rows deleted; a run after a crash finishes the crashed one.
 * - Otherwise, over the storage contract alone: rows are scanned out, written as Parquet to
 *   `_friday/<dataset>/_archive/rows/<ULID>.parquet[.gz|.zst]`, then deleted. A row written with such an
 *   old timestamp between the scan and the delete is deleted without being archived.
 *
 * A dry run counts the rows that would expire (a scan) and changes nothing. The archives' Parquet
 * pages are compressed by `codecs` (default `jsCodecs()`; the Node entry passes `nativeCodecs()`).
 */

import { codecSuffix, compress } from '../core/archive-codec.js'
import { newId } from '../core/ids.js'
import { rowArchiveRoot } from '../core/layout.js'
import type { RotationPolicy } from '../core/rotation-policy.js'
import type { DataStorage, DatasetMaintenance, MaintenanceOptions, MaintenanceReport, Table } from '../core/types.js'
import { encodeParquet, type ParquetCodecs } from '../parquet/index.js'
import type { ObjectStore } from '../stores/types.js'
import { StepRecorder } from './op-records.js'
import { emptyDatasetReport, finishReport } from './report.js'

/** Rows per archived Parquet file. */
const ARCHIVE_BATCH_ROWS = 500_000

/** Where a backend with exact retention puts a batch of expired rows (`put` of a name again replaces it). */
export interface RowArchiveSink {
  put(name: string, rows: Table): Promise<void>
  /** Removes what `put(name)` stored; nothing stored under `name` is fine. */
  remove(name: string): Promise<void>
}

/** The optional capability of a backend that archives and deletes expired rows exactly itself. */
export interface ExactRowRetention {
  expireRows(
    dataset: string,
    options: { cutoff: number; archive?: RowArchiveSink; batchSize?: number },
  ): Promise<{ rowsExpired: number; archives: string[] }>
}

function hasExactRetention(storage: DataStorage): storage is DataStorage & ExactRowRetention {
  return typeof (storage as Partial<ExactRowRetention>).expireRows === 'function'
}

/** An archive over `store`: name `n` of dataset `ds` is the object `_friday/<ds>/_archive/rows/<n>.parquet<codec suffix>` (the lake's layout). */
function storeArchive(
  store: ObjectStore,
  ds: string,
  codec: RotationPolicy['archiveCodec'],
  bytes: Map<string, number>,
  codecs: ParquetCodecs | undefined,
) {
  const keyOf = (name: string) => `${rowArchiveRoot(ds)}${name}.parquet${codecSuffix(codec)}`
  const sink: RowArchiveSink = {
    async put(name, rows) {
      const stored = await compress(codec, encodeParquet(rows, { codecs }))
      await store.put(keyOf(name), stored)
      bytes.set(name, stored.byteLength)
    },
    async remove(name) {
      await store.delete([keyOf(name)])
      bytes.delete(name)
    },
  }
  return sink
}

export async function maintainRows(
  storage: DataStorage,
  policy: RotationPolicy,
  options: MaintenanceOptions,
  archiveStore?: () => ObjectStore,
  codecs?: ParquetCodecs,
): Promise<MaintenanceReport> {
  const startedAt = new Date()
  const t0 = performance.now()
  const before = storage.requestStats()
  const rec = new StepRecorder(options.sink, () => storage.requestStats())
  const now = options.now ?? Date.now
  const dryRun = options.dryRun ?? false
  const names = options.dataset !== undefined ? [options.dataset] : await storage.listDatasets()
  const reports: DatasetMaintenance[] = []
  const store = policy.rowRetentionMs !== null && !dryRun ? archiveStore?.() : undefined
  try {
    for (const ds of names) {
      const r = emptyDatasetReport(ds)
      reports.push(r)
      if (policy.rowRetentionMs === null) continue
      const cutoff = now() - policy.rowRetentionMs
      try {
        await rec.step(
          'retention',
          ds,
          async () => {
            if (store) await store.ensureContainer()
            if (!dryRun && hasExactRetention(storage)) {
              const bytes = new Map<string, number>()
              const archive = store ? storeArchive(store, ds, policy.archiveCodec, bytes, codecs) : undefined
              const res = await storage.expireRows(ds, { cutoff, archive, batchSize: ARCHIVE_BATCH_ROWS })
              r.rowsExpired = res.rowsExpired
              r.archivesWritten = res.archives.length
              for (const name of res.archives) r.archiveBytesWritten += bytes.get(name) ?? 0
              return
            }
            if (dryRun || store) {
              for await (const batch of storage.scan(ds, { end: cutoff, batchSize: ARCHIVE_BATCH_ROWS })) {
                r.rowsExpired += batch.length
                if (!store) continue
                const stored = await compress(policy.archiveCodec, encodeParquet(batch, { codecs }))
                await store.put(`${rowArchiveRoot(ds)}${newId()}.parquet${codecSuffix(policy.archiveCodec)}`, stored)
                r.archivesWritten++
                r.archiveBytesWritten += stored.byteLength
              }
            }
            if (!dryRun) r.rowsExpired = (await storage.delete(ds, { end: cutoff })).rowsDeleted
          },
          () => ({
            rows: r.rowsExpired,
            bytes: r.archiveBytesWritten,
            details: { rowsExpired: r.rowsExpired, archivesWritten: r.archivesWritten, cutoff: new Date(cutoff).toISOString() },
          }),
        )
      } catch (err) {
        r.errors.push({ partition: null, message: err instanceof Error ? err.message : String(err) })
      }
    }
  } finally {
    await store?.close()
  }
  const report = finishReport(storage.backend, dryRun, startedAt, t0, reports)
  rec.emit('maintain', options.dataset ?? null, startedAt, t0, before, {
    rows: report.totals.rowsExpired,
    details: { dryRun, ...report.totals },
  })
  return report
}
