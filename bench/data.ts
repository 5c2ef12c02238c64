/**
 * Deterministic minute bars for the benchmark, built directly as columns so that generating
 * them is never part of a measurement: `symbols × days × barsPerDay` rows, weekdays only, one
 * regular session per UTC day (14:30-20:59 UTC), prices a seeded random walk.
 */

import { mulberry32 } from '../src/training/random.js'

export { mulberry32 }

export interface BarsSpec {
  symbols: number
  days: number
  barsPerDay: number
  /** `symbol`: all bars of SYM00, then SYM01...; `time`: every symbol's bar of a minute together. */
  order: 'symbol' | 'time'
  seed: number
}

/** Columnar input as `storage.write` accepts it: timestamps are epoch milliseconds. */
export type BarsColumns = {
  symbol: string[]
  timestamp: Float64Array
  open: Float64Array
  high: Float64Array
  low: Float64Array
  close: Float64Array
  volume: Float64Array
}

export interface Bars {
  spec: BarsSpec
  rows: number
  columns: BarsColumns
  symbols: string[]
  /** Session days, `YYYY-MM-DD` (UTC), ascending. */
  days: string[]
  /** Epoch ms of each day's UTC midnight. */
  dayStartMs: number[]
}

const MINUTE_MS = 60_000
const DAY_MS = 86_400_000
const SESSION_OPEN_MS = (14 * 60 + 30) * MINUTE_MS

/** `n` weekdays (UTC) from `firstMs` on. */
export function weekdays(firstMs: number, n: number): number[] {
  const out: number[] = []
  for (let t = firstMs; out.length < n; t += DAY_MS) {
    const wd = new Date(t).getUTCDay()
    if (wd !== 0 && wd !== 6) out.push(t)
  }
  return out
}

const round2 = (x: number) => Math.round(x * 100) / 100

export function generateBars(spec: BarsSpec): Bars {
  const rand = mulberry32(spec.seed)
  const symbols = Array.from({ length: spec.symbols }, (_, i) => `SYM${String(i).padStart(2, '0')}`)
  const dayStartMs = weekdays(Date.UTC(2024, 0, 2), spec.days)
  const rows = spec.symbols * spec.days * spec.barsPerDay
  const c: BarsColumns = {
    symbol: new Array<string>(rows),
    timestamp: new Float64Array(rows),
    open: new Float64Array(rows),
    high: new Float64Array(rows),
    low: new Float64Array(rows),
    close: new Float64Array(rows),
    volume: new Float64Array(rows),
  }
  const price = symbols.map((_, i) => 20 + 10 * i + rand() * 10)
  const perSymbol = spec.days * spec.barsPerDay
  // row index of (symbol s, bar k of the whole calendar) under either order
  const rowOf =
    spec.order === 'symbol' ? (s: number, k: number) => s * perSymbol + k : (s: number, k: number) => k * spec.symbols + s
  for (let d = 0; d < spec.days; d++) {
    for (let b = 0; b < spec.barsPerDay; b++) {
      const k = d * spec.barsPerDay + b
      const ts = dayStartMs[d] + SESSION_OPEN_MS + b * MINUTE_MS
      for (let s = 0; s < spec.symbols; s++) {
        const i = rowOf(s, k)
        const o = price[s]
        const next = Math.max(1, round2(o * (1 + (rand() - 0.5) * 0.004)))
        price[s] = next
        c.symbol[i] = symbols[s]
        c.timestamp[i] = ts
        c.open[i] = o
        c.close[i] = next
        c.high[i] = round2(Math.max(o, next) + rand() * 0.05)
        c.low[i] = round2(Math.min(o, next) - rand() * 0.05)
        c.volume[i] = Math.floor(rand() * 50_000) + 100
      }
    }
  }
  const days = dayStartMs.map((t) => new Date(t).toISOString().slice(0, 10))
  return { spec, rows, columns: c, symbols, days, dayStartMs }
}
