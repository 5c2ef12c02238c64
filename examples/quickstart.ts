/**
 * Quickstart: writes a week of synthetic 1-minute bars for three symbols into the default
 * local lake (./data, or DATA_DIR / STORAGE_BACKEND from the environment), reads one
 * symbol-day back, and prints what the lake now holds.
 */
import { getDefaultStorage } from '../src/node.js'
import { toRows } from '../src/core/table.js'

const storage = getDefaultStorage()
const symbols = ['AAPL', 'MSFT', 'EUR/USD']
const days = ['2024-01-02', '2024-01-03', '2024-01-04', '2024-01-05', '2024-01-08']
const n = symbols.length * days.length * 390
const cols = {
  symbol: new Array<string>(n),
  timestamp: new Float64Array(n),
  open: new Float64Array(n),
  high: new Float64Array(n),
  low: new Float64Array(n),
  close: new Float64Array(n),
  volume: new Float64Array(n),
}
let i = 0
let seed = 42
const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32)
for (const [s, symbol] of symbols.entries()) {
  let price = 100 + 50 * s
  for (const day of days) {
    const open = Date.parse(`${day}T14:30:00Z`)
    for (let m = 0; m < 390; m++, i++) {
      const o = price
      price = Math.max(1, price + (rand() - 0.5) * 0.2)
      cols.symbol[i] = symbol
      cols.timestamp[i] = open + m * 60_000
      cols.open[i] = o
      cols.high[i] = Math.max(o, price) + rand() * 0.05
      cols.low[i] = Math.min(o, price) - rand() * 0.05
      cols.close[i] = price
      cols.volume[i] = Math.round(1000 + rand() * 9000)
    }
  }
}

const t0 = performance.now()
const written = await storage.write('bars_1m', cols)
console.log(`wrote ${written.rowsWritten} rows into ${written.partitions.length} partitions in ${(performance.now() - t0).toFixed(0)} ms (${storage.backend})`)

const day = await storage.read('bars_1m', { symbols: ['AAPL'], start: '2024-01-03', end: '2024-01-04', columns: ['close', 'volume'] })
console.log(`AAPL on 2024-01-03: ${day.length} bars; first:`, toRows(day)[0])

console.log('describe:', await storage.describe('bars_1m'))
const report = await storage.verify('bars_1m')
console.log(`verify: ${report.ok ? 'ok' : 'PROBLEMS'} (${report.files} files, ${report.bytes} bytes checked)`)
console.log('store requests:', storage.requestStats())
if (storage.backend === 'local_parquet') {
  console.log(`\nRead it with DuckDB:\n  SELECT symbol, count(*), avg(close) FROM read_parquet('${process.env.DATA_DIR ?? './data'}/bars_1m/**/*.parquet', hive_partitioning = true, union_by_name = true) GROUP BY symbol;`)
}
await storage.close()
