/**
 * Read queries of the Postgres backend: filters to SQL, rows (array mode) to a columnar Table.
 */

import { projectSchema, type TimeSymbolFilter } from '../../core/filter.js'
import { BOOL_NULL, type Column, type Schema, type Table } from '../../core/types.js'
import { selectExpr, tsParam } from './sql.js'

export interface RowFilter {
  /** null = every symbol. */
  symbols: string[] | null
  /** Epoch µs, inclusive; -Infinity = open. */
  start: number
  /** Epoch µs, exclusive; +Infinity = open. */
  end: number
}

/**
 * Stored rows lie in [0001-01-01, 10000-01-01): earlier versions accepted no time outside it
 * (PostgreSQL refused the text of year 0 and `formatUs` of years past 9999), and today's writes
 * accept only `[1700, 2200)`. Filter bounds beyond it are opened or make the filter empty, so
 * no time PostgreSQL cannot parse is ever sent, and the answer is the one any backend gives.
 */
export const FIRST_STORABLE_US = -62_135_596_800_000_000
export const PAST_STORABLE_US = 253_402_300_800_000_000
/** A NUL, or a lone UTF-16 surrogate (no UTF-8 form: the driver would send U+FFFD instead). */
const UNSTORABLE_SYMBOL_RE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * The filter the front checked (`symbols`, `start`, `end`), narrowed to what PostgreSQL can hold.
 * A symbol with a NUL or a lone surrogate matches nothing (no stored symbol has one; PostgreSQL
 * text cannot even hold it, and sent as is it would match U+FFFD), as in the lake; a range
 * outside every storable time likewise. An empty filter has `symbols: []`.
 */
export function rowFilter(f: TimeSymbolFilter): RowFilter {
  let symbols = f.symbols ? [...f.symbols].filter((s) => !UNSTORABLE_SYMBOL_RE.test(s)) : null
  let start = f.start < FIRST_STORABLE_US ? Number.NEGATIVE_INFINITY : f.start
  let end = f.end >= PAST_STORABLE_US ? Number.POSITIVE_INFINITY : f.end
  if (start >= PAST_STORABLE_US || end <= FIRST_STORABLE_US || start >= end) {
    symbols = []
    start = Number.NEGATIVE_INFINITY
    end = Number.POSITIVE_INFINITY
  }
  return { symbols, start, end }
}

/**
 * The contract orders symbols as JavaScript compares strings (UTF-16 code units); the data
 * tables' "C" collation orders by code point. The two differ only where one symbol has a
 * supplementary character (U+10000 and up: a surrogate pair) and the other a character in
 * U+E000-U+FFFF at the first position they differ. A symbol with no code unit >= U+D800 sits
 * at the same place in both orders, so a page holding no such symbol is right as read.
 */
const ORDER_MAY_DIFFER_RE = /[\ud800-\uffff]/

/** True when a symbol of `t` (sorted by the server) may stand elsewhere in the contract's order. */
export function needsCodeUnitOrder(t: Table): boolean {
  const sym = t.columns.symbol.values as string[]
  for (let i = 0; i < t.length; i++) {
    if ((i === 0 || sym[i] !== sym[i - 1]) && ORDER_MAY_DIFFER_RE.test(sym[i])) return true
  }
  return false
}

/**
 * A text expression whose "C" (code point) order is the UTF-16 code-unit order of `expr`: each
 * character of U+E000-U+FFFF becomes U+10FFFF followed by itself, U+10FFFF itself becomes
 * U+10FFFF U+0001, every other character stays. Per character the codes keep UTF-16 order
 * (U+0001-U+D7FF < U+10000-U+10FFFF < U+E000-U+FFFF) and none is a prefix of another, so whole
 * strings compare as in JavaScript. Distinct symbols keep distinct keys.
 */
export function codeUnitKey(expr: string): string {
  return `(regexp_replace(replace(${expr}, chr(1114111), chr(1114111) || chr(1)), '([\\uE000-\\uFFFF])', chr(1114111) || '\\1', 'g') COLLATE "C")`
}

/** `WHERE` conditions on table alias `t` for a filter; parameters are appended to `values`. */
export function filterSql(f: RowFilter, values: unknown[]): string[] {
  const conds: string[] = []
  if (f.symbols) {
    values.push(f.symbols)
    conds.push(`t.symbol = ANY($${values.length}::text[])`)
  }
  if (Number.isFinite(f.start)) {
    values.push(tsParam(f.start))
    conds.push(`t."timestamp" >= $${values.length}::timestamptz`)
  }
  if (Number.isFinite(f.end)) {
    values.push(tsParam(f.end))
    conds.push(`t."timestamp" < $${values.length}::timestamptz`)
  }
  return conds
}

/** The columns to return: the key columns plus those asked for, in schema order. */
export const projection = projectSchema

export function selectList(schema: Schema): string {
  return schema.map((c) => selectExpr('t', c.name, c.type)).join(', ')
}

/** Rows in array mode (one array per row, in `schema` order) to a columnar Table. */
export function tableFromRows(schema: Schema, rows: unknown[][]): Table {
  const n = rows.length
  const columns: Record<string, Column> = {}
  schema.forEach((c, j) => {
    switch (c.type) {
      case 'float64': {
        const out = new Float64Array(n)
        for (let i = 0; i < n; i++) {
          const v = rows[i][j]
          out[i] = v === null ? Number.NaN : typeof v === 'number' ? v : Number(v)
        }
        columns[c.name] = { type: 'float64', values: out }
        break
      }
      case 'timestamp': {
        const out = new Float64Array(n)
        for (let i = 0; i < n; i++) {
          const v = rows[i][j]
          out[i] = v === null ? Number.NaN : Number(v)
        }
        columns[c.name] = { type: 'timestamp', values: out }
        break
      }
      case 'int64': {
        const out = new BigInt64Array(n)
        let nulls: Uint8Array | undefined
        for (let i = 0; i < n; i++) {
          const v = rows[i][j]
          if (v === null) {
            nulls ??= new Uint8Array(n)
            nulls[i] = 1
          } else out[i] = BigInt(v as string)
        }
        columns[c.name] = nulls ? { type: 'int64', values: out, nulls } : { type: 'int64', values: out }
        break
      }
      case 'boolean': {
        const out = new Uint8Array(n)
        for (let i = 0; i < n; i++) {
          const v = rows[i][j]
          out[i] = v === null ? BOOL_NULL : v === true || v === 't' ? 1 : 0
        }
        columns[c.name] = { type: 'boolean', values: out }
        break
      }
      case 'string': {
        const out = new Array<string | null>(n)
        for (let i = 0; i < n; i++) out[i] = rows[i][j] as string | null
        columns[c.name] = { type: 'string', values: out }
        break
      }
    }
  })
  return { length: n, schema, columns }
}
