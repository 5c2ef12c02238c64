/**
 * Read queries of the Postgres backend: filters to SQL, rows (array mode) to a columnar Table.
 */

import { ValidationError } from '../../errors.js'
import { parseRowFilter, projectSchema } from '../../table/filter.js'
import { BOOL_NULL, type Column, type Schema, type Table } from '../../types.js'
import { selectExpr, tsParam } from './sql.js'

export interface RowFilter {
  /** null = every symbol. */
  symbols: string[] | null
  /** Epoch µs, inclusive; -Infinity = open. */
  start: number
  /** Epoch µs, exclusive; +Infinity = open. */
  end: number
}

/** Parses and checks `symbols`, `start`, `end` (shared with every backend). */
export function rowFilter(o: { symbols?: unknown; start?: unknown; end?: unknown }): RowFilter {
  const f = parseRowFilter(o)
  return { symbols: f.symbols ? [...f.symbols] : null, start: f.start, end: f.end }
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

export function checkLimit(limit: unknown): number {
  const n = limit ?? Number.POSITIVE_INFINITY
  if (typeof n !== 'number' || !(n >= 0))
    throw new ValidationError([{ field: 'limit', message: 'expected a non-negative integer' }])
  return Math.floor(n)
}

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
