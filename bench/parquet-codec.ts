/**
 * Micro-benchmark of the Parquet codec: a 1M-row OHLCV table encoded/decoded as one file and as
 * 2,500 files of 400 rows. Run: `npx tsx bench/parquet-codec.ts`.
 */

import type { Table } from '../src/core/types.js'
import { decodeParquet, encodeParquet, loadZstdWasm, type ParquetCodecs, type ParquetCompression } from '../src/parquet/index.js'

const ROWS = 1_000_000
const FILES = 2_500
const PER_FILE = ROWS / FILES
const MINUTE_US = 60_000_000

function ohlcv(rows: number, offset: number, symbol: string): Table {
  const timestamp = new Float64Array(rows)
  const open = new Float64Array(rows)
  const high = new Float64Array(rows)
  const low = new Float64Array(rows)
  const close = new Float64Array(rows)
  const volume = new BigInt64Array(rows)
  let price = 100
  for (let i = 0; i < rows; i++) {
    timestamp[i] = Date.UTC(2024, 0, 2, 14, 30) * 1000 + (offset + i) * MINUTE_US
    const o = price
    price = Math.max(1, Math.round((price + (Math.random() - 0.5)) * 100) / 100)
    open[i] = o
    close[i] = price
    high[i] = Math.max(o, price) + Math.round(Math.random() * 20) / 100
    low[i] = Math.min(o, price) - Math.round(Math.random() * 20) / 100
    volume[i] = BigInt(Math.floor(Math.random() * 100_000))
  }
  return {
    length: rows,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'open', type: 'float64' },
      { name: 'high', type: 'float64' },
      { name: 'low', type: 'float64' },
      { name: 'close', type: 'float64' },
      { name: 'volume', type: 'int64' },
    ],
    columns: {
      symbol: { type: 'string', values: new Array(rows).fill(symbol) },
      timestamp: { type: 'timestamp', values: timestamp },
      open: { type: 'float64', values: open },
      high: { type: 'float64', values: high },
      low: { type: 'float64', values: low },
      close: { type: 'float64', values: close },
      volume: { type: 'int64', values: volume },
    },
  }
}

async function time<T>(label: string, fn: () => T | Promise<T>): Promise<T> {
  const start = performance.now()
  const result = await fn()
  console.log(`${label.padEnd(44)} ${(performance.now() - start).toFixed(1).padStart(8)} ms`)
  return result
}

async function run(compression: ParquetCompression, codecs: ParquetCodecs) {
  const big = ohlcv(ROWS, 0, 'AAPL')
  const small = Array.from({ length: FILES }, (_, f) => ohlcv(PER_FILE, f * PER_FILE, `S${f % 50}`))
  // warm-up so JIT compilation is not measured
  for (const t of small.slice(0, 50)) await decodeParquet(encodeParquet(t, { compression, codecs }), { codecs })

  const one = await time(`[${compression}] encode 1 x ${ROWS} rows`, () => encodeParquet(big, { compression, codecs }))
  const decoded = await time(`[${compression}] decode 1 x ${ROWS} rows`, () => decodeParquet(one, { codecs }))
  if (decoded.length !== ROWS) throw new Error('row count mismatch')
  const many = await time(`[${compression}] encode ${FILES} x ${PER_FILE} rows`, () =>
    small.map((t) => encodeParquet(t, { compression, codecs })),
  )
  await time(`[${compression}] decode ${FILES} x ${PER_FILE} rows`, async () => {
    let rows = 0
    for (const bytes of many) rows += (await decodeParquet(bytes, { codecs })).length
    if (rows !== ROWS) throw new Error('row count mismatch')
  })
  const bytes = many.reduce((sum, b) => sum + b.byteLength, 0)
  console.log(
    `[${compression}] sizes: 1 file ${(one.byteLength / 1e6).toFixed(1)} MB, ${FILES} files ${(bytes / 1e6).toFixed(1)} MB`,
  )
}

// pure-JS Snappy, zstd-wasm both ways (as the lake uses them outside the Node entry)
const codecs: ParquetCodecs = { zstd: await loadZstdWasm() }
await run('snappy', codecs)
await run('zstd', codecs)
