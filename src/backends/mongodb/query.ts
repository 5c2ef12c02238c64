/** Read/delete options → validated filters → MongoDB queries over the rows collection. */

import type { Filter } from 'mongodb'
import { projectSchema, type TimeSymbolFilter } from '../../core/filter.js'
import type { RowDoc } from './documents.js'

/** Symbols (null = all) and the time range [start, end) in epoch µs (infinite = open). */
export interface RowFilter {
  symbols: Set<string> | null
  start: number
  end: number
}

/** A NUL, or a lone UTF-16 surrogate (BSON is UTF-8: it would be sent as U+FFFD). */
const UNSTORABLE_SYMBOL_RE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * The filter the front checked (`symbols`, `start`, `end`), narrowed to what MongoDB can hold: a
 * symbol no row can have (a NUL, a lone surrogate) matches nothing, as in the lake: sent as is,
 * `X\uD800` would match a stored `X\uFFFD`.
 */
export function rowFilter(f: TimeSymbolFilter): RowFilter {
  if (!f.symbols) return f
  return { ...f, symbols: new Set([...f.symbols].filter((s) => !UNSTORABLE_SYMBOL_RE.test(s))) }
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
export { projectSchema }
