/**
 * Training benchmark (a section of `npm run bench`, `--skip-training`): on the bench's ~1M-bar
 * lake, the normalized matrix + 60-step windows (and DuckDB computing the same features); batch
 * iteration over a 10M-row lake (rows/s, peak RSS); read-cache hit latency. Each step runs in its
 * own child process (bench/training-main.ts) so peak RSS is that step's alone.
 */

import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fmtMs, ratio, table, verdict } from './report.js'

export const TARGET_MATRIX_MS = 200
export const TARGET_STREAM_RSS_MB = 300

export interface TrainingBenchResults {
  matrix: {
    shape: number[]
    windows: number
    loadMedianMs: number
    matrixWindowsMedianMs: number
    windowsMedianMs: number
    totalMedianMs: number
    duckdbFeaturesMedianMs: number
    baselineRssMb: number
    peakRssMb: number
    /** One cold pass in its own process. */
    memory: { ms: number; baselineRssMb: number; peakRssMb: number; resultMb: number; windowsMb: number }
  }
  stream: {
    datasetRows: number
    writeMs: number
    rows: number
    batches: number
    planMs: number
    iterateMs: number
    rowsPerSec: number
    baselineRssMb: number
    peakRssMb: number
  }
  cache: {
    symbolDay: { rows: number; uncachedMs: number; missMs: number; hitMs: number }
    symbolMonth: { rows: number; uncachedMs: number; missMs: number; hitMs: number }
  }
}

function step<T>(...args: string[]): T {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'training-main.ts'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  })
  return JSON.parse(out.trim().split('\n').at(-1)!) as T
}

/** `lake`: a local_parquet base dir holding the bench's `bars_1m` dataset. */
export async function runTrainingBench(lake: string, quick: boolean, runs: number): Promise<TrainingBenchResults> {
  console.log('  matrix + windows on the 1M-bar lake (child process)')
  const timed = step<Omit<TrainingBenchResults['matrix'], 'memory'>>('matrix', lake, String(runs))
  const matrix = { ...timed, memory: step<TrainingBenchResults['matrix']['memory']>('matrix-memory', lake) }
  console.log('  read cache (child process)')
  const cache = step<TrainingBenchResults['cache']>('cache', lake, String(runs))
  const big = await mkdtemp(join(tmpdir(), 'friday-bench-stream-'))
  try {
    const target = quick ? 1_000_000 : 10_000_000
    console.log(`  writing ${target.toLocaleString('en-US')} rows for the streaming step (untimed setup)`)
    const w = step<{ rows: number; writeMs: number }>('write', big, String(target))
    console.log(`  streaming every row of ${w.rows.toLocaleString('en-US')} in batches (child process)`)
    const s = step<Omit<TrainingBenchResults['stream'], 'datasetRows' | 'writeMs'>>('stream', big)
    return { matrix, cache, stream: { ...s, datasetRows: w.rows, writeMs: w.writeMs } }
  } finally {
    await rm(big, { recursive: true, force: true })
  }
}

export function formatTraining(r: TrainingBenchResults): string {
  const m = r.matrix
  const s = r.stream
  const mb = (x: number) => `${x.toFixed(0)} MB`
  const duckRatio = ratio(m.totalMedianMs, m.duckdbFeaturesMedianMs)
  const lines = [
    `=== training (${m.shape[0].toLocaleString('en-US')} rows × ${m.shape[1]} features, ${m.windows.toLocaleString('en-US')} windows of 60) ===`,
    table(
      ['step', 'result', 'detail', 'target'],
      [
        [
          'matrix + windows (after load)',
          fmtMs(m.matrixWindowsMedianMs),
          `split, target, scaler fit, float32 matrix ${fmtMs(m.matrixWindowsMedianMs - m.windowsMedianMs)}, windows ${fmtMs(m.windowsMedianMs)} (loaded table in, timed alone)`,
          `<=${TARGET_MATRIX_MS} ms ${verdict(m.matrixWindowsMedianMs <= TARGET_MATRIX_MS)}`,
        ],
        [
          'stored bars -> matrix + windows',
          fmtMs(m.totalMedianMs),
          `incl. load ${fmtMs(m.loadMedianMs)} (checks + read of the 5 feature columns)`,
          '(info)',
        ],
        [
          'matrix + windows peak RSS',
          `+${mb(m.memory.peakRssMb - m.memory.baselineRssMb)}`,
          `one cold pass in a fresh process: ${mb(m.memory.baselineRssMb)} -> ${mb(m.memory.peakRssMb)}; matrix arrays ${mb(m.memory.resultMb)}, window index ${mb(m.memory.windowsMb)}`,
          '(info)',
        ],
        [
          'duckdb same features -> JS arrays',
          fmtMs(m.duckdbFeaturesMedianMs),
          `ours/duckdb ${duckRatio}x (duckdb: stats over all rows, lead() return, ORDER BY)`,
          '(info)',
        ],
        [
          `batches over ${s.datasetRows.toLocaleString('en-US')} rows`,
          `${(s.rowsPerSec / 1e6).toFixed(2)} M rows/s`,
          `${s.rows.toLocaleString('en-US')} rows in ${s.batches} batches, ${fmtMs(s.iterateMs)}; plan (split + scaler passes) ${fmtMs(s.planMs)}`,
          '(info)',
        ],
        [
          'batches peak RSS',
          mb(s.peakRssMb),
          `baseline ${mb(s.baselineRssMb)} (VmHWM of the child process)`,
          `<=${TARGET_STREAM_RSS_MB} MB ${verdict(s.peakRssMb <= TARGET_STREAM_RSS_MB)}`,
        ],
        ...(['symbolDay', 'symbolMonth'] as const).map((k) => [
          `read cache ${k}`,
          `hit ${fmtMs(r.cache[k].hitMs)}`,
          `miss ${fmtMs(r.cache[k].missMs)}, uncached read ${fmtMs(r.cache[k].uncachedMs)}, ${r.cache[k].rows} rows`,
          '(info)',
        ]),
      ],
    ),
  ]
  return lines.join('\n')
}
