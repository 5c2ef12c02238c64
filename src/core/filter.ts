/** The read/delete filter every backend accepts: symbols, and a [start, end) time range. */

import { ValidationError } from './errors.js'
import { take } from './table.js'
import { parseTimeUs } from './time.js'
import type { Schema, Table } from './types.js'

export interface TimeSymbolFilter {
  /** null = all symbols */
  symbols: Set<string> | null
  /** Epoch µs, inclusive; -Infinity = open. */
  start: number
  /** Epoch µs, exclusive; +Infinity = open. */
  end: number
}

/** The filter that keeps every row. */
export const ALL_ROWS: Readonly<TimeSymbolFilter> = Object.freeze({
  symbols: null,
  start: Number.NEGATIVE_INFINITY,
  end: Number.POSITIVE_INFINITY,
})

/** Parses and checks `symbols`, `start`, `end`; a ValidationError names each bad field. */
export function parseRowFilter(o: { symbols?: unknown; start?: unknown; end?: unknown }): TimeSymbolFilter {
  const issues = []
  let start = Number.NEGATIVE_INFINITY
  let end = Number.POSITIVE_INFINITY
  if (o.start !== undefined && o.start !== null) {
    const us = parseTimeUs(o.start)
    if (us === null) issues.push({ field: 'start', message: `cannot parse time ${JSON.stringify(String(o.start))}` })
    else start = us
  }
  if (o.end !== undefined && o.end !== null) {
    const us = parseTimeUs(o.end)
    if (us === null) issues.push({ field: 'end', message: `cannot parse time ${JSON.stringify(String(o.end))}` })
    else end = us
  }
  if (o.symbols !== undefined && (!Array.isArray(o.symbols) || o.symbols.some((s) => typeof s !== 'string'))) {
    issues.push({ field: 'symbols', message: 'expected an array of strings' })
  }
  if (issues.length) throw new ValidationError(issues)
  return { symbols: o.symbols ? new Set(o.symbols as string[]) : null, start, end }
}

/**
 * The schema of a read: the key columns plus the requested ones, in schema order (all columns
 * when `columns` is absent). Unknown names are a ValidationError naming each.
 */
export function projectSchema(dataset: string, schema: Schema, columns?: unknown): Schema {
  if (columns === undefined || columns === null) return schema
  if (!Array.isArray(columns)) throw new ValidationError([{ field: 'columns', message: 'expected an array of column names' }])
  const unknown = columns.filter((c) => !schema.some((s) => s.name === c))
  if (unknown.length) {
    throw new ValidationError(
      unknown.map((c) => ({ field: 'columns', message: `unknown column '${String(c)}' in dataset '${dataset}'` })),
    )
  }
  const want = new Set(['symbol', 'timestamp', ...columns])
  return schema.filter((c) => want.has(c.name))
}

/** Keeps rows inside the filter; returns the same table when all rows match. */
export function filterRows(t: Table, f: TimeSymbolFilter): Table {
  if (f.symbols === null && f.start === Number.NEGATIVE_INFINITY && f.end === Number.POSITIVE_INFINITY) return t
  const sym = t.columns.symbol.values as string[]
  const ts = t.columns.timestamp.values as Float64Array
  let all = true
  for (let i = 0; i < t.length; i++) {
    if (ts[i] < f.start || ts[i] >= f.end || (f.symbols !== null && !f.symbols.has(sym[i]))) {
      all = false
      break
    }
  }
  if (all) return t
  const keep: number[] = []
  for (let i = 0; i < t.length; i++) {
    if (!(ts[i] < f.start || ts[i] >= f.end || (f.symbols !== null && !f.symbols.has(sym[i])))) keep.push(i)
  }
  return take(t, keep)
}
