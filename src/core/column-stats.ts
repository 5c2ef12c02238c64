/** Per-column statistics and distinct symbols of a table, as manifests and catalogs record them. */

import { formatUs } from './time.js'
import { BOOL_NULL, type ColumnStats, type Table } from './types.js'

/** Min, max and null count of every column (int64 as decimal strings, timestamps as ISO). */
export function columnStats(table: Table): Record<string, ColumnStats> {
  const out: Record<string, ColumnStats> = {}
  for (const { name } of table.schema) {
    const col = table.columns[name]
    let nulls = 0
    switch (col.type) {
      case 'float64':
      case 'timestamp': {
        let min = Number.POSITIVE_INFINITY
        let max = Number.NEGATIVE_INFINITY
        const v = col.values
        for (let i = 0; i < v.length; i++) {
          const x = v[i]
          if (x !== x) nulls++
          else {
            if (x < min) min = x
            if (x > max) max = x
          }
        }
        const some = nulls < v.length
        out[name] =
          col.type === 'timestamp'
            ? { min: some ? formatUs(min) : null, max: some ? formatUs(max) : null, nulls }
            : { min: some ? min : null, max: some ? max : null, nulls }
        break
      }
      case 'int64': {
        let min: bigint | null = null
        let max: bigint | null = null
        for (let i = 0; i < col.values.length; i++) {
          if (col.nulls?.[i] === 1) {
            nulls++
            continue
          }
          const x = col.values[i]
          if (min === null || x < min) min = x
          if (max === null || x > max) max = x
        }
        out[name] = { min: min === null ? null : String(min), max: max === null ? null : String(max), nulls }
        break
      }
      case 'boolean': {
        let t = 0
        let f = 0
        for (const x of col.values) {
          if (x === BOOL_NULL) nulls++
          else if (x) t++
          else f++
        }
        out[name] = { min: f ? false : t ? true : null, max: t ? true : f ? false : null, nulls }
        break
      }
      case 'string': {
        let min: string | null = null
        let max: string | null = null
        for (const x of col.values) {
          if (x === null) {
            nulls++
            continue
          }
          if (min === null || x < min) min = x
          if (max === null || x > max) max = x
        }
        out[name] = { min, max, nulls }
        break
      }
    }
  }
  return out
}

/** Sorted distinct symbols of a table (whose rows are sorted by symbol). */
export function distinctSymbols(table: Table): string[] {
  const sym = table.columns.symbol.values as string[]
  const out: string[] = []
  for (let i = 0; i < sym.length; i++) if (i === 0 || sym[i] !== sym[i - 1]) out.push(sym[i])
  return [...new Set(out)].sort()
}
