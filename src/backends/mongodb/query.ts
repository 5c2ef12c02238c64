/** Read/delete options → validated filters → MongoDB queries over the rows collection. */

import type { Filter } from 'mongodb'
import { type FieldIssue, ValidationError } from '../../errors.js'
import { parseTimeUs } from '../../table/time.js'
import type { Schema } from '../../types.js'
import type { RowDoc } from './documents.js'

/** Symbols (null = all) and the time range [start, end) in epoch µs (infinite = open). */
export interface RowFilter {
  symbols: Set<string> | null
  start: number
  end: number
}

export function rowFilter(o: { symbols?: unknown; start?: unknown; end?: unknown }): RowFilter {
  const issues: FieldIssue[] = []
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

/** The MongoDB filter for a row filter (served by the `{ symbol: 1, t: 1 }` index). */
export function rowQuery(f: RowFilter, symbol?: string): Filter<RowDoc> {
  const q: Filter<RowDoc> = {}
  if (symbol !== undefined) q.symbol = symbol
  else if (f.symbols) q.symbol = { $in: [...f.symbols] }
  const t: { $gte?: number; $lt?: number } = {}
  if (Number.isFinite(f.start)) t.$gte = f.start
  if (Number.isFinite(f.end)) t.$lt = f.end
  if (t.$gte !== undefined || t.$lt !== undefined) q.t = t
  return q
}

/** True when the filter cannot match anything (an empty symbol list or range). */
export function isEmptyFilter(f: RowFilter): boolean {
  return (f.symbols !== null && f.symbols.size === 0) || f.end <= f.start
}

/** The schema of a read: key columns plus the requested ones (all when `columns` is absent). */
export function projectSchema(dataset: string, schema: Schema, columns?: unknown): Schema {
  if (columns === undefined) return schema
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
