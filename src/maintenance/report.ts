/** Building `MaintenanceReport`s: empty per-dataset entries and the run's totals. */

import type { DatasetMaintenance, MaintenanceReport } from '../core/types.js'

export function emptyDatasetReport(dataset: string): DatasetMaintenance {
  return {
    dataset,
    skipped: null,
    partitionsChecked: 0,
    compacted: [],
    partitionsSkipped: [],
    resumed: 0,
    archivesWritten: 0,
    archiveBytesWritten: 0,
    archivesRemoved: 0,
    rowsExpired: 0,
    orphansRemoved: 0,
    partitionsRepaired: 0,
    errors: [],
  }
}

export function finishReport(
  backend: string,
  dryRun: boolean,
  startedAt: Date,
  t0: number,
  datasets: DatasetMaintenance[],
): MaintenanceReport {
  const sum = (f: (d: DatasetMaintenance) => number) => datasets.reduce((s, d) => s + f(d), 0)
  return {
    backend,
    dryRun,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    datasets,
    totals: {
      partitionsCompacted: sum((d) => d.compacted.length),
      filesMerged: sum((d) => d.compacted.reduce((s, c) => s + c.filesBefore, 0)),
      filesWritten: sum((d) => d.compacted.reduce((s, c) => s + c.filesAfter, 0)),
      bytesBefore: sum((d) => d.compacted.reduce((s, c) => s + c.bytesBefore, 0)),
      bytesAfter: sum((d) => d.compacted.reduce((s, c) => s + c.bytesAfter, 0)),
      archivesWritten: sum((d) => d.archivesWritten),
      archivesRemoved: sum((d) => d.archivesRemoved),
      rowsExpired: sum((d) => d.rowsExpired),
      orphansRemoved: sum((d) => d.orphansRemoved),
      partitionsRepaired: sum((d) => d.partitionsRepaired),
      partitionsSkipped: sum((d) => d.partitionsSkipped.length),
    },
  }
}
