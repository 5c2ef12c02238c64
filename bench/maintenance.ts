/**
 * Maintenance benchmark: ingest many small batches (one file each) into 100 partitions of a local
 * lake, then `maintain()` (count_based compaction with archiving): files before/after, a
 * symbol-year read before/after (median of cold-ish in-process runs), maintenance duration.
 * Full: 10,000 batches (100 files per partition); `--quick`: 1,000. Runs alone with
 * `npx tsx bench/maintenance.ts [--quick]`, or as a section of `npm run bench` (`--skip-maintenance`).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pLimit from 'p-limit'
import { createStorage } from '../src/node.js'
import { fmtMs, median, table } from './report.js'

export interface MaintenanceBenchResults {
  batches: number
  rowsPerBatch: number
  partitions: number
  ingestMs: number
  filesBefore: number
  filesAfter: number
  bytesBefore: number
  bytesAfter: number
  archivesWritten: number
  archiveBytes: number
  maintainMs: number
  symbolYearRows: number
  symbolYearBeforeMs: number
  symbolYearAfterMs: number
}

const SYMBOLS = Array.from({ length: 10 }, (_, i) => `SYM${i}`)
const DAYS = 10
const ROWS_PER_BATCH = 5
const READ_RUNS = 7

export async function runMaintenanceBench(quick: boolean): Promise<MaintenanceBenchResults> {
  const batches = quick ? 1_000 : 10_000
  const perPartition = batches / (SYMBOLS.length * DAYS)
  const dir = await mkdtemp(join(tmpdir(), 'friday-bench-maint-'))
  const config = {
    storage: {
      default_backend: 'local_parquet',
      local_parquet: { base_dir: dir },
      file_rotation: { enabled: true, strategy: 'count_based', max_files: 8 },
      metadata_logging: { enabled: false },
    },
  }
  const storage = createStorage(config, {})
  try {
    const t0 = performance.now()
    const limit = pLimit(8)
    const jobs: Promise<unknown>[] = []
    for (let k = 0; k < perPartition; k++)
      for (const symbol of SYMBOLS)
        for (let d = 0; d < DAYS; d++) {
          const start = Date.UTC(2024, 0, 2 + d, 14, 30) + k * ROWS_PER_BATCH * 60_000
          const rows = Array.from({ length: ROWS_PER_BATCH }, (_, i) => ({
            symbol,
            timestamp: start + i * 60_000,
            open: 100 + i,
            high: 101 + i,
            low: 99 + i,
            close: 100.5 + i,
            volume: 1000 * (k + 1) + i,
          }))
          jobs.push(limit(() => storage.write('bars', rows)))
        }
    await Promise.all(jobs)
    const ingestMs = performance.now() - t0
    const before = (await storage.describe('bars'))!

    const readYear = async () => {
      const times: number[] = []
      let rows = 0
      for (let i = 0; i < READ_RUNS; i++) {
        const t = performance.now()
        rows = (await storage.read('bars', { symbols: ['SYM3'], start: '2024-01-01', end: '2025-01-01' })).length
        times.push(performance.now() - t)
      }
      return { ms: median(times), rows }
    }
    const readBefore = await readYear()

    const m0 = performance.now()
    const report = await storage.maintain!({})
    const maintainMs = performance.now() - m0
    const after = (await storage.describe('bars'))!
    if (after.rows !== before.rows) throw new Error(`maintenance changed the row count: ${before.rows} -> ${after.rows}`)
    const readAfter = await readYear()
    if (readAfter.rows !== readBefore.rows) throw new Error('symbol-year rows differ after maintenance')
    const archives = await storage.listArchives!('bars')
    return {
      batches,
      rowsPerBatch: ROWS_PER_BATCH,
      partitions: before.partitions,
      ingestMs,
      filesBefore: before.files,
      filesAfter: after.files,
      bytesBefore: before.bytes,
      bytesAfter: after.bytes,
      archivesWritten: report.totals.archivesWritten,
      archiveBytes: archives.reduce((s, a) => s + a.storedBytes, 0),
      maintainMs,
      symbolYearRows: readBefore.rows,
      symbolYearBeforeMs: readBefore.ms,
      symbolYearAfterMs: readAfter.ms,
    }
  } finally {
    await storage.close()
    await rm(dir, { recursive: true, force: true })
  }
}

export function formatMaintenance(r: MaintenanceBenchResults): string {
  const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`
  return [
    `\n=== maintenance: ${r.batches.toLocaleString('en-US')} batches of ${r.rowsPerBatch} rows into ${r.partitions} partitions (local lake, count_based max_files 8, gzip archives) ===`,
    table(
      ['measure', 'before', 'after'],
      [
        ['files', r.filesBefore.toLocaleString('en-US'), r.filesAfter.toLocaleString('en-US')],
        ['live bytes', mb(r.bytesBefore), mb(r.bytesAfter)],
        [
          `symbol-year read (${r.symbolYearRows} rows, median of ${READ_RUNS})`,
          fmtMs(r.symbolYearBeforeMs),
          fmtMs(r.symbolYearAfterMs),
        ],
      ],
    ),
    `ingest ${fmtMs(r.ingestMs)} (${Math.round((r.batches / r.ingestMs) * 1000)} batches/s); maintain ${fmtMs(r.maintainMs)}; ${r.archivesWritten} files archived (${mb(r.archiveBytes)} gzip)`,
  ].join('\n')
}

if (process.argv[1]?.endsWith('maintenance.ts')) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
  const r = await runMaintenanceBench(values.quick ?? false)
  console.log(formatMaintenance(r))
  console.log(JSON.stringify(r))
}
