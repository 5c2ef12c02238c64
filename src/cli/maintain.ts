/**
 * `friday maintain`: one maintenance run (rotation, compaction, archiving, retention, gc) under
 * the configured `file_rotation` policy, with a progress bar on a terminal, one line per dataset
 * and a summary on stdout. Suitable for cron: exit code 1 when any partition failed.
 */

import cliProgress from 'cli-progress'
import type { FileRotationConfig } from '../config/schema.js'
import { checkDatasetName } from '../core/keys.js'
import type { DataStorage, DatasetMaintenance } from '../core/types.js'
import { runMaintenance, summarizeReport } from '../maintenance/run.js'
import { requireDataset } from './context.js'
import { countOf, formatBytes, formatCount } from './text.js'

export interface MaintainOptions {
  dataset?: string
  dryRun: boolean
  json: boolean
  /** Show a progress bar (stderr is a TTY and no `--quiet`). */
  progress: boolean
  quiet: boolean
  /** The effective `storage.file_rotation`: the run says which policy it applied, or that rotation is off. */
  rotation?: FileRotationConfig
}

/** One line naming the rotation policy the run applies, or saying that rotation is off. */
export function rotationLine(r: FileRotationConfig): string {
  if (!r.enabled)
    return 'file rotation is disabled (storage.file_rotation.enabled: false): no compaction; retention and gc still run'
  const threshold =
    r.strategy === 'size_based'
      ? `max_file_size_mb: ${r.max_file_size_mb}`
      : r.strategy === 'count_based'
        ? `max_files: ${r.max_files}, files of up to max_file_size_mb: ${r.max_file_size_mb}`
        : `max_file_age_hours: ${r.max_file_age_hours}, files of up to max_file_size_mb: ${r.max_file_size_mb}`
  const archive = r.compress_old_files ? `archived ${r.archive_codec}-compressed` : 'archived uncompressed'
  return `file rotation: ${r.strategy} (${threshold}); replaced files ${archive}`
}

function datasetLine(d: DatasetMaintenance, dry: boolean): string {
  if (d.skipped) return `${d.dataset}: skipped (${d.skipped})`
  const before = d.compacted.reduce((s, c) => s + c.bytesBefore, 0)
  const after = d.compacted.reduce((s, c) => s + c.bytesAfter, 0)
  const files = d.compacted.reduce((s, c) => s + c.filesBefore, 0)
  const written = d.compacted.reduce((s, c) => s + c.filesAfter, 0)
  return (
    `${d.dataset}: ${countOf(d.partitionsChecked, 'partition')} checked, ${d.compacted.length} ${dry ? 'due' : 'compacted'} ` +
    `(${countOf(files, 'file')} -> ${formatCount(written)}, ${formatBytes(before)} -> ${formatBytes(after)}), ` +
    `archives +${d.archivesWritten} -${d.archivesRemoved}, rows expired ${formatCount(d.rowsExpired)}, ` +
    `orphans removed ${d.orphansRemoved}${d.resumed ? `, ${countOf(d.resumed, 'interrupted compaction')} finished` : ''}` +
    `${d.errors.length ? `, ${countOf(d.errors.length, 'error')}` : ''}`
  )
}

/** Runs maintenance; returns the exit code (1 when anything failed). */
export async function maintain(storage: DataStorage, opts: MaintainOptions): Promise<number> {
  if (opts.dataset !== undefined) {
    checkDatasetName(opts.dataset)
    await requireDataset(storage, opts.dataset) // as ls and query: an unknown dataset is a failure, not an empty run
  }
  const bar = opts.progress
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: ' {bar} {value}/{total} partitions | {dataset}',
          hideCursor: true,
          barsize: 24,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      )
    : null
  let current = ''
  try {
    const report = await runMaintenance(storage, {
      dataset: opts.dataset,
      dryRun: opts.dryRun,
      onProgress: ({ dataset, done, total }) => {
        if (!bar) return
        if (dataset !== current) {
          current = dataset
          bar.start(total, 0, { dataset })
        }
        bar.update(done, { dataset })
      },
    })
    bar?.stop()
    const policy = opts.rotation ? rotationLine(opts.rotation) : null
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
      if (policy && !opts.rotation?.enabled) process.stderr.write(`${policy}\n`)
    } else {
      // the policy line even with --quiet when rotation is off: it is why nothing was compacted
      const lines = policy && (!opts.quiet || !opts.rotation?.enabled) ? [policy] : []
      if (!opts.quiet) lines.push(...report.datasets.map((d) => datasetLine(d, report.dryRun)))
      for (const d of report.datasets)
        for (const e of d.errors) lines.push(`${d.dataset}${e.partition ? `/${e.partition}` : ''}: error: ${e.message}`)
      lines.push(summarizeReport(report))
      process.stdout.write(`${lines.join('\n')}\n`)
    }
    return report.datasets.some((d) => d.errors.length) ? 1 : 0
  } finally {
    bar?.stop()
  }
}
