/** Running maintenance from an entry point (CLI, HTTP, the Worker's `scheduled`): the storage's op log as sink, a one-line summary. */

import { MaintenanceUnsupportedError } from '../core/errors.js'
import type { DataStorage, MaintenanceOptions, MaintenanceReport } from '../core/types.js'

/** `storage.maintain(options)`, reporting to the storage's op log unless `options.sink` says otherwise. */
export async function runMaintenance(storage: DataStorage, options: MaintenanceOptions = {}): Promise<MaintenanceReport> {
  if (!storage.maintain) throw new MaintenanceUnsupportedError(storage.backend)
  return storage.maintain({ sink: storage.oplog, ...options })
}

/** One line: what the run did (or would do, dry). */
export function summarizeReport(r: MaintenanceReport): string {
  const t = r.totals
  const skipped = r.datasets.filter((d) => d.skipped).length
  const errors = r.datasets.reduce((s, d) => s + d.errors.length, 0)
  const parts = [
    `${r.dryRun ? 'dry run: would compact' : 'compacted'} ${t.partitionsCompacted} partition${t.partitionsCompacted === 1 ? '' : 's'}`,
    `${t.filesMerged} file${t.filesMerged === 1 ? '' : 's'} -> ${t.filesWritten}`,
    `${t.bytesBefore} -> ${t.bytesAfter} bytes`,
    `archives +${t.archivesWritten} -${t.archivesRemoved}`,
    `rows expired ${t.rowsExpired}`,
    `orphans removed ${t.orphansRemoved}`,
  ]
  if (t.partitionsRepaired) parts.push(`partitions repaired ${t.partitionsRepaired}`)
  if (skipped) parts.push(`${skipped} dataset${skipped === 1 ? '' : 's'} skipped`)
  if (errors) parts.push(`${errors} error${errors === 1 ? '' : 's'}`)
  return `maintenance (${r.backend}, ${r.datasets.length} dataset${r.datasets.length === 1 ? '' : 's'}, ${r.durationMs} ms): ${parts.join(', ')}`
}
