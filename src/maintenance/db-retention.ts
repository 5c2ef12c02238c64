/**
 * Maintenance of the database backends (`postgres`, `mongodb`), over the storage contract alone:
 * they keep rows, not files, so rotation and compaction mean nothing there and only row
 * retention applies. Rows older than `row_retention_days` (by timestamp) are scanned out,
 * written as Parquet to `<dataset>/_archive/rows/<ULID>.parquet[.gz|.zst]` in the configured
 * object store when there is one, then deleted. A row written with such an old timestamp between
 * the scan and the delete is deleted without being archived.
 */

import { codecSuffix, compress } from '../lake/archive-codec.js'
import { newId } from '../lake/ids.js'
import type { RotationPolicy } from '../lake/rotation-policy.js'
import { encodeParquet } from '../parquet/index.js'
import type { ObjectStore } from '../stores/types.js'
import type { DataStorage, DatasetMaintenance, MaintenanceOptions, MaintenanceReport } from '../types.js'
import { StepRecorder } from './op-records.js'
import { emptyDatasetReport, finishReport } from './report.js'

/** Rows per archived Parquet file. */
const ARCHIVE_BATCH_ROWS = 500_000

export async function maintainRows(
  storage: DataStorage,
  policy: RotationPolicy,
  options: MaintenanceOptions,
  archiveStore?: () => ObjectStore,
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
            if (dryRun || store) {
              for await (const batch of storage.scan(ds, { end: cutoff, batchSize: ARCHIVE_BATCH_ROWS })) {
                r.rowsExpired += batch.length
                if (!store) continue
                const stored = await compress(policy.archiveCodec, encodeParquet(batch))
                await store.put(`${ds}/_archive/rows/${newId()}.parquet${codecSuffix(policy.archiveCodec)}`, stored)
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
