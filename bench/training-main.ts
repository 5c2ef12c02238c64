/**
 * Training benchmark steps, each run in a fresh child process so its peak RSS is its own
 * (`VmHWM`, see peakMb). Prints one JSON line.
 *   matrix <lake> <runs>   1M stored bars → normalized matrix + 60-step windows (and DuckDB doing
 *                          the same features with window functions over the same files)
 *   matrix-memory <lake>  one cold load → matrix → windows: peak RSS over the baseline
 *   write <dir> <rows>     writes ~rows bars in day-sized batches (bounded memory; untimed setup)
 *   stream <dir>           batch iteration over every row of the dataset: rows/s and peak RSS
 *   cache <lake> <runs>    read latency through the TTL read cache: miss vs hit
 */

import { readFileSync } from 'node:fs'
import type { DataStorage } from '../src/core/types.js'
import { createStorage, withReadCache } from '../src/node.js'
import { buildMatrix } from '../src/training/matrix.js'
import { MatrixOptionsSchema, parseOptions } from '../src/training/options.js'
import { loadTrainingTable, prepareTable, prepareTrainingData, SEGMENTS } from '../src/training/prepare.js'
import { openTrainingStream } from '../src/training/stream.js'
import { sequenceWindows } from '../src/training/windows.js'
import { mulberry32, weekdays } from './data.js'
import { median } from './report.js'

export const DATASET = 'bars_1m'
const FEATURES = ['open', 'high', 'low', 'close', 'volume']
const OPTIONS = { features: FEATURES, target: 'returns', testSize: 0.2, validationSize: 0.1, gap: 5 }

const [mode, dir, arg] = process.argv.slice(2)
const storage = (root: string): DataStorage =>
  createStorage(
    {
      storage: {
        default_backend: 'local_parquet',
        local_parquet: { base_dir: root },
        metadata_logging: { enabled: false },
        read_cache: { enabled: false },
      },
    },
    {},
  )
/**
 * Peak RSS of this process in MB (10^6 bytes). Linux: `VmHWM`, the high-water mark of this
 * process's own address space. Not `resourceUsage().maxRSS`: exec keeps the parent's high-water
 * mark there, so a child of the (big) bench process would report the parent's RSS.
 */
function peakMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
    if (m) return (Number(m[1]) * 1024) / 1e6
  } catch {}
  return (process.resourceUsage().maxRSS * 1024) / 1e6
}
const rssMb = () => process.memoryUsage().rss / 1e6

async function matrixStep(lake: string, runs: number) {
  const opts = parseOptions(MatrixOptionsSchema, OPTIONS)
  const baselineRssMb = rssMb()
  const out = { loadMs: [] as number[], matrixMs: [] as number[], windowsMs: [] as number[], totalMs: [] as number[] }
  let shape: number[] = []
  let windows = 0
  for (let i = 0; i <= runs; i++) {
    const s = storage(lake)
    const t0 = performance.now()
    const loaded = await loadTrainingTable(s, DATASET, opts)
    const t1 = performance.now()
    const p = prepareTable(DATASET, loaded, opts)
    const m = buildMatrix(p, { dtype: 'float32', normalize: true, scalerType: 'standard', scaler: null })
    const tb = performance.now()
    const w = sequenceWindows(m, { lookback: 60, stride: 1, maxGap: 60_000 })
    const t2 = performance.now()
    await s.close()
    shape = m.shape
    windows = w.train.count + w.validation.count + w.test.count
    if (i === 0) continue // warm-up
    out.loadMs.push(t1 - t0)
    out.matrixMs.push(t2 - t1)
    out.windowsMs.push(t2 - tb)
    out.totalMs.push(t2 - t0)
  }
  // DuckDB: the same features and next-period return with window functions, into JS typed arrays.
  const { DuckDBInstance } = await import('@duckdb/node-api') // only this step loads DuckDB
  const duck = await (await DuckDBInstance.create(':memory:')).connect()
  const sql = `WITH b AS (SELECT * FROM read_parquet('${lake}/${DATASET}/**/*.parquet', hive_partitioning = true)),
    s AS (SELECT ${FEATURES.map((f) => `avg(${f}) AS m_${f}, stddev_pop(${f}) AS s_${f}`).join(', ')} FROM b)
    SELECT ${FEATURES.map((f) => `(${f} - m_${f}) / s_${f} AS ${f}`).join(', ')},
      lead(close) OVER (PARTITION BY symbol ORDER BY timestamp) / close - 1 AS y
    FROM b, s ORDER BY symbol, timestamp`
  const duckMs: number[] = []
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now()
    const res = await duck.run(sql)
    const cols = Array.from({ length: res.columnCount }, () => new Float32Array(res.rowCount))
    let off = 0
    for (let c = 0; c < res.chunkCount; c++) {
      const chunk = res.getChunk(c)
      for (let j = 0; j < cols.length; j++) {
        const vec = chunk.getColumnVector(j)
        const dst = cols[j]
        for (let r = 0; r < chunk.rowCount; r++) dst[off + r] = (vec.getItem(r) as number | null) ?? Number.NaN
      }
      off += chunk.rowCount
    }
    if (i > 0) duckMs.push(performance.now() - t0)
  }
  duck.closeSync()
  return {
    shape,
    windows,
    runs: out,
    loadMedianMs: median(out.loadMs),
    matrixWindowsMedianMs: median(out.matrixMs),
    windowsMedianMs: median(out.windowsMs),
    totalMedianMs: median(out.totalMs),
    duckdbFeaturesMedianMs: median(duckMs),
    duckdbRuns: duckMs,
    baselineRssMb,
    peakRssMb: peakMb(),
  }
}

/** One cold load → matrix → windows in a fresh process: its peak RSS over the baseline. */
async function matrixMemoryStep(lake: string) {
  const opts = parseOptions(MatrixOptionsSchema, OPTIONS)
  const s = storage(lake)
  await s.describe(DATASET) // modules and clients loaded before the baseline
  const baselineRssMb = rssMb()
  const t0 = performance.now()
  const p = await prepareTrainingData(s, DATASET, opts)
  const m = buildMatrix(p, { dtype: 'float32', normalize: true, scalerType: 'standard', scaler: null })
  const w = sequenceWindows(m, { lookback: 60, stride: 1, maxGap: 60_000 })
  const ms = performance.now() - t0
  const resultMb =
    (m.X.byteLength + m.y.byteLength + m.timestamps.byteLength + m.labelTs.byteLength + m.symbolIndex.byteLength) / 1e6
  const windowsMb = SEGMENTS.reduce(
    (a, k) =>
      a + (w[k].starts.byteLength + w[k].targets.byteLength + w[k].endTimestamps.byteLength + w[k].symbolIndex.byteLength) / 1e6,
    0,
  )
  await s.close()
  return { ms, baselineRssMb, peakRssMb: peakMb(), resultMb, windowsMb }
}

async function writeStep(root: string, rows: number) {
  const s = storage(root)
  const symbols = 40
  const barsPerDay = 390
  const days = Math.ceil(rows / (symbols * barsPerDay))
  const chunk = 16
  let written = 0
  const t0 = performance.now()
  const rand = mulberry32(7)
  const price = Array.from({ length: symbols }, (_, i) => 20 + 10 * i + rand() * 10)
  const dayStart = weekdays(Date.UTC(2020, 0, 2), days)
  const names = Array.from({ length: symbols }, (_, i) => `SYM${String(i).padStart(2, '0')}`)
  for (let d = 0; d < days; d += chunk) {
    // The next `chunk` days of every symbol, a seeded random walk continued from the last batch.
    const nd = Math.min(chunk, days - d)
    const n = symbols * nd * barsPerDay
    const c = {
      symbol: new Array<string>(n),
      timestamp: new Float64Array(n),
      open: new Float64Array(n),
      high: new Float64Array(n),
      low: new Float64Array(n),
      close: new Float64Array(n),
      volume: new Float64Array(n),
    }
    let i = 0
    for (let sy = 0; sy < symbols; sy++) {
      for (let k = 0; k < nd * barsPerDay; k++, i++) {
        const o = price[sy]
        const next = Math.max(1, Math.round(o * (1 + (rand() - 0.5) * 0.004) * 100) / 100)
        price[sy] = next
        c.symbol[i] = names[sy]
        c.timestamp[i] = dayStart[d + Math.floor(k / barsPerDay)] + 870 * 60_000 + (k % barsPerDay) * 60_000
        c.open[i] = o
        c.close[i] = next
        c.high[i] = Math.max(o, next) + 0.01
        c.low[i] = Math.min(o, next) - 0.01
        c.volume[i] = Math.floor(rand() * 50_000) + 100
      }
    }
    const res = await s.write(DATASET, c)
    written += res.rowsWritten
  }
  await s.close()
  return { rows: written, symbols, days, writeMs: performance.now() - t0 }
}

async function streamStep(root: string) {
  const s = storage(root)
  const baselineRssMb = rssMb()
  let sampledPeak = baselineRssMb
  const timer = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, rssMb())
  }, 20)
  const t0 = performance.now()
  const stream = await openTrainingStream(s, { dataset: DATASET, ...OPTIONS })
  const planMs = performance.now() - t0
  let rows = 0
  let batches = 0
  const t1 = performance.now()
  for (const segment of ['train', 'validation', 'test'] as const) {
    for await (const b of stream.batches(segment, { batchSize: 4096, shuffle: segment === 'train', seed: 1 })) {
      rows += b.rows
      batches++
    }
  }
  const iterateMs = performance.now() - t1
  clearInterval(timer)
  await s.close()
  return {
    rows,
    batches,
    planMs,
    iterateMs,
    rowsPerSec: rows / (iterateMs / 1000),
    baselineRssMb,
    sampledPeakRssMb: sampledPeak,
    peakRssMb: peakMb(),
  }
}

async function cacheStep(lake: string, runs: number) {
  const base = storage(lake)
  const cached = withReadCache(base, { ttlMs: 600_000, maxBytes: 512 * 1024 * 1024 })
  const symbol = 'SYM03'
  const desc = await base.describe(DATASET)
  const day = desc!.firstTimestamp!.slice(0, 10)
  const month = day.slice(0, 7)
  const cases = {
    symbolDay: { symbols: [symbol], start: `${day}T00:00:00Z`, end: `${day}T23:59:59.999Z` },
    symbolMonth: { symbols: [symbol], start: `${month}-01T00:00:00Z`, end: `${month}-31T23:59:59.999Z` },
  }
  const result: Record<string, { rows: number; uncachedMs: number; missMs: number; hitMs: number }> = {}
  for (const [name, filter] of Object.entries(cases)) {
    const unc: number[] = []
    const miss: number[] = []
    const hit: number[] = []
    let rows = 0
    for (let i = 0; i <= runs; i++) {
      cached.readCache.clear()
      let t0 = performance.now()
      rows = (await base.read(DATASET, filter)).length
      const u = performance.now() - t0
      t0 = performance.now()
      await cached.read(DATASET, filter)
      const m = performance.now() - t0
      t0 = performance.now()
      const again = await cached.read(DATASET, filter)
      const h = performance.now() - t0
      if (again.length !== rows) throw new Error(`cache: ${again.length} rows, expected ${rows}`)
      if (i === 0) continue
      unc.push(u)
      miss.push(m)
      hit.push(h)
    }
    result[name] = { rows, uncachedMs: median(unc), missMs: median(miss), hitMs: median(hit) }
  }
  const stats = cached.readCache.stats()
  await cached.close()
  return { ...result, stats }
}

const runs = Number(arg ?? 5)
const res =
  mode === 'matrix'
    ? await matrixStep(dir, runs)
    : mode === 'matrix-memory'
      ? await matrixMemoryStep(dir)
      : mode === 'write'
        ? await writeStep(dir, Number(arg))
        : mode === 'stream'
          ? await streamStep(dir)
          : mode === 'cache'
            ? await cacheStep(dir, runs)
            : null
if (!res) throw new Error(`unknown mode ${mode}: expected matrix, write, stream or cache`)
console.log(JSON.stringify(res))
