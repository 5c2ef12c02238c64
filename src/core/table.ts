/** Columnar table operations: build, take, concatenate, sort, de-duplicate, compare. */

import { ValidationError } from './errors.js'
import { formatUs } from './time.js'
import { BOOL_NULL, type Column, type ColumnType, type Schema, type Table } from './types.js'

export const KEY_SCHEMA: Schema = [
  { name: 'symbol', type: 'string' },
  { name: 'timestamp', type: 'timestamp' },
]

/** Smallest and largest `timestamp` of a table (epoch µs); ±Infinity when empty. */
export function timeRange(table: Table): { min: number; max: number } {
  const ts = table.columns.timestamp.values as Float64Array
  let min = Number.POSITIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  for (let i = 0; i < ts.length; i++) {
    if (ts[i] < min) min = ts[i]
    if (ts[i] > max) max = ts[i]
  }
  return { min, max }
}

/** A column of `n` nulls. */
export function nullColumn(type: ColumnType, n: number): Column {
  switch (type) {
    case 'float64':
    case 'timestamp':
      return { type, values: new Float64Array(n).fill(Number.NaN) }
    case 'int64':
      return { type, values: new BigInt64Array(n), nulls: new Uint8Array(n).fill(1) }
    case 'boolean':
      return { type, values: new Uint8Array(n).fill(BOOL_NULL) }
    case 'string':
      return { type, values: new Array<string | null>(n).fill(null) }
  }
}

/**
 * A column of `n` entries to be overwritten (zeros; int64 gets a zeroed null mask, strings are
 * null, so an entry left unwritten is null rather than a hole).
 */
export function uninitializedColumn(type: ColumnType, n: number): Column {
  switch (type) {
    case 'float64':
    case 'timestamp':
      return { type, values: new Float64Array(n) }
    case 'int64':
      return { type, values: new BigInt64Array(n), nulls: new Uint8Array(n) }
    case 'boolean':
      return { type, values: new Uint8Array(n) }
    case 'string':
      return { type, values: new Array<string | null>(n).fill(null) }
  }
}

export function emptyTable(schema: Schema): Table {
  const columns: Record<string, Column> = {}
  for (const c of schema) columns[c.name] = nullColumn(c.type, 0)
  return { length: 0, schema, columns }
}

/** The column, or a null column when the table lacks it. */
export function columnOr(table: Table, name: string, type: ColumnType): Column {
  return table.columns[name] ?? nullColumn(type, table.length)
}

/** Rows `index[i]` of a column, in that order. */
export function takeColumn(col: Column, index: ArrayLike<number>): Column {
  const n = index.length
  switch (col.type) {
    case 'float64':
    case 'timestamp': {
      const out = new Float64Array(n)
      const v = col.values
      for (let i = 0; i < n; i++) out[i] = v[index[i]]
      return { type: col.type, values: out }
    }
    case 'int64': {
      const out = new BigInt64Array(n)
      const v = col.values
      for (let i = 0; i < n; i++) out[i] = v[index[i]]
      if (!col.nulls) return { type: 'int64', values: out }
      const nulls = new Uint8Array(n)
      for (let i = 0; i < n; i++) nulls[i] = col.nulls[index[i]]
      return { type: 'int64', values: out, nulls }
    }
    case 'boolean': {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = col.values[index[i]]
      return { type: 'boolean', values: out }
    }
    case 'string': {
      const out = new Array<string | null>(n)
      for (let i = 0; i < n; i++) out[i] = col.values[index[i]]
      return { type: 'string', values: out }
    }
  }
}

export function take(table: Table, index: ArrayLike<number>): Table {
  const columns: Record<string, Column> = {}
  for (const c of table.schema) columns[c.name] = takeColumn(columnOr(table, c.name, c.type), index)
  return { length: index.length, schema: table.schema, columns }
}

/** Rows [start, end) as views where the column type allows (no copy for typed arrays). */
export function slice(table: Table, start: number, end: number): Table {
  const columns: Record<string, Column> = {}
  for (const c of table.schema) {
    const col = columnOr(table, c.name, c.type)
    switch (col.type) {
      case 'float64':
      case 'timestamp':
        columns[c.name] = { type: col.type, values: col.values.subarray(start, end) }
        break
      case 'int64':
        columns[c.name] = { type: 'int64', values: col.values.subarray(start, end), nulls: col.nulls?.subarray(start, end) }
        break
      case 'boolean':
        columns[c.name] = { type: 'boolean', values: col.values.subarray(start, end) }
        break
      case 'string':
        columns[c.name] = { type: 'string', values: col.values.slice(start, end) }
        break
    }
  }
  return { length: Math.max(0, end - start), schema: table.schema, columns }
}

/** Concatenates tables into `schema`; columns a table lacks are null for its rows. */
export function concat(tables: Table[], schema: Schema): Table {
  const parts = tables.filter((t) => t.length > 0)
  if (parts.length === 1 && sameSchema(parts[0].schema, schema)) return parts[0]
  const n = parts.reduce((s, t) => s + t.length, 0)
  const columns: Record<string, Column> = {}
  for (const { name, type } of schema) {
    // no need to pre-fill nulls when every part has the column
    const out = parts.every((t) => t.columns[name]) ? uninitializedColumn(type, n) : nullColumn(type, n)
    let off = 0
    for (const t of parts) {
      const col = t.columns[name]
      if (col) copyInto(out, col, off)
      off += t.length
    }
    columns[name] = out
  }
  return { length: n, schema, columns }
}

/** Writes `t`'s rows into `columns` (those of `schema`) from row `offset`; columns `t` lacks are null there. */
export function placeRows(columns: Record<string, Column>, schema: Schema, t: Table, offset: number): void {
  for (const { name, type } of schema) {
    const out = columns[name]
    const col = t.columns[name]
    if (col) copyInto(out, col, offset)
    else copyInto(out, nullColumn(type, t.length), offset)
  }
}

/** Sets rows [from, to) of a column to null. */
export function fillNull(col: Column, from: number, to: number): void {
  switch (col.type) {
    case 'float64':
    case 'timestamp':
      col.values.fill(Number.NaN, from, to)
      return
    case 'int64':
      col.nulls ??= new Uint8Array(col.values.length)
      col.nulls.fill(1, from, to)
      return
    case 'boolean':
      col.values.fill(BOOL_NULL, from, to)
      return
    case 'string':
      col.values.fill(null, from, to)
      return
  }
}

/** Moves rows [from, from + n) down to row `to` (`to <= from`) in every column of `schema`. */
export function moveRows(columns: Record<string, Column>, schema: Schema, from: number, to: number, n: number): void {
  if (from === to || n === 0) return
  for (const { name } of schema) {
    const col = columns[name]
    if (col.type === 'string') {
      const v = col.values
      for (let i = 0; i < n; i++) v[to + i] = v[from + i]
    } else {
      col.values.copyWithin(to, from, from + n)
      if (col.type === 'int64') col.nulls?.copyWithin(to, from, from + n)
    }
  }
}

/** The first `n` rows of `columns` as a table (copies unless `n` is all of them). */
export function truncateColumns(columns: Record<string, Column>, schema: Schema, n: number): Table {
  const out: Record<string, Column> = {}
  for (const { name } of schema) {
    const col = columns[name]
    if (col.values.length === n) out[name] = col
    else if (col.type === 'string') out[name] = { type: 'string', values: col.values.slice(0, n) }
    else if (col.type === 'int64') out[name] = { type: 'int64', values: col.values.slice(0, n), nulls: col.nulls?.slice(0, n) }
    else out[name] = { type: col.type, values: col.values.slice(0, n) } as Column
  }
  return { length: n, schema, columns: out }
}

function copyInto(out: Column, col: Column, off: number): void {
  if (out.type === 'string') {
    const v = col.values as (string | null)[]
    for (let i = 0; i < v.length; i++) out.values[off + i] = v[i]
  } else if (out.type === 'int64') {
    const c = col as Extract<Column, { type: 'int64' }>
    out.values.set(c.values, off)
    if (c.nulls) out.nulls!.set(c.nulls, off)
    else out.nulls!.fill(0, off, off + c.values.length)
  } else {
    ;(out.values as Float64Array | Uint8Array).set(col.values as Float64Array & Uint8Array, off)
  }
}

export function sameSchema(a: Schema, b: Schema): boolean {
  return a.length === b.length && a.every((c, i) => c.name === b[i].name && c.type === b[i].type)
}

/** True when the table is already sorted by (symbol, timestamp), strictly or not. */
export function isSorted(table: Table): boolean {
  const sym = table.columns.symbol.values as string[]
  const ts = table.columns.timestamp.values as Float64Array
  for (let i = 1; i < table.length; i++) {
    if (sym[i] < sym[i - 1] || (sym[i] === sym[i - 1] && ts[i] < ts[i - 1])) return false
  }
  return true
}

/** A stable permutation ordering rows by (symbol, timestamp). */
export function sortIndex(table: Table): Uint32Array {
  const n = table.length
  const idx = new Uint32Array(n)
  for (let i = 0; i < n; i++) idx[i] = i
  if (isSorted(table)) return idx
  const sym = table.columns.symbol.values as string[]
  const ts = table.columns.timestamp.values as Float64Array
  const arr = Array.from(idx)
  arr.sort((a, b) => {
    const sa = sym[a]
    const sb = sym[b]
    if (sa !== sb) return sa < sb ? -1 : 1
    return ts[a] - ts[b] || a - b
  })
  idx.set(arr)
  return idx
}

export function sortTable(table: Table): Table {
  if (isSorted(table)) return table
  return take(table, sortIndex(table))
}

/**
 * Keeps, for each (symbol, timestamp) key, only the LAST row in input order. The result is
 * sorted by key. Returns the table unchanged when keys are already unique and sorted.
 */
export function dedupeLastWins(table: Table): Table {
  const order = sortIndex(table)
  const sym = table.columns.symbol.values as string[]
  const ts = table.columns.timestamp.values as Float64Array
  const keep: number[] = []
  for (let k = 0; k < order.length; k++) {
    const i = order[k]
    const next = order[k + 1]
    // stable sort: among equal keys the last in input order comes last
    if (next !== undefined && sym[next] === sym[i] && ts[next] === ts[i]) continue
    keep.push(i)
  }
  if (keep.length === table.length && keep.every((v, i) => v === i)) return table
  return take(table, keep)
}

/** Pairs of row indexes sharing a key (first occurrence, later occurrence). */
export function duplicateKeys(table: Table): [number, number][] {
  const order = sortIndex(table)
  const sym = table.columns.symbol.values as string[]
  const ts = table.columns.timestamp.values as Float64Array
  const out: [number, number][] = []
  for (let k = 1; k < order.length; k++) {
    const a = order[k - 1]
    const b = order[k]
    if (sym[a] === sym[b] && ts[a] === ts[b]) out.push([a, b])
  }
  return out
}

/** Throws a ValidationError naming each later row whose key repeats an earlier one (append batches). */
export function assertUniqueKeys(table: Table): void {
  const dups = duplicateKeys(table)
  if (dups.length) {
    throw new ValidationError(
      dups
        .slice(0, 20)
        .map(([a, b]) => ({ row: b, field: 'timestamp', message: `duplicate key: same symbol and timestamp as row ${a}` })),
    )
  }
}

/** Cell-by-cell equality of two tables over `schema` (NaN equals NaN). */
export function tablesEqual(a: Table, b: Table, schema: Schema): boolean {
  if (a.length !== b.length) return false
  for (const { name, type } of schema) {
    const ca = columnOr(a, name, type)
    const cb = columnOr(b, name, type)
    if (ca.type !== cb.type) return false
    const n = a.length
    if (ca.type === 'float64' || ca.type === 'timestamp') {
      const va = ca.values
      const vb = cb.values as Float64Array
      for (let i = 0; i < n; i++) if (va[i] !== vb[i] && !(va[i] !== va[i] && vb[i] !== vb[i])) return false
    } else if (ca.type === 'int64') {
      const cbi = cb as Extract<Column, { type: 'int64' }>
      for (let i = 0; i < n; i++) {
        const na = ca.nulls?.[i] === 1
        const nb = cbi.nulls?.[i] === 1
        if (na !== nb || (!na && ca.values[i] !== cbi.values[i])) return false
      }
    } else {
      const va = ca.values
      const vb = cb.values
      for (let i = 0; i < n; i++) if (va[i] !== vb[i]) return false
    }
  }
  return true
}

/** Value at row `i` as a plain JS value: number | bigint | string | boolean | Date | null. */
export function cell(col: Column, i: number): number | bigint | string | boolean | Date | null {
  switch (col.type) {
    case 'float64': {
      const v = col.values[i]
      return Number.isNaN(v) ? null : v
    }
    case 'timestamp': {
      const v = col.values[i]
      return Number.isNaN(v) ? null : new Date(Math.floor(v / 1000))
    }
    case 'int64':
      return col.nulls?.[i] === 1 ? null : col.values[i]
    case 'boolean':
      return col.values[i] === BOOL_NULL ? null : col.values[i] === 1
    case 'string':
      return col.values[i]
  }
}

/**
 * Row objects, for convenience and small results (not for hot paths). Timestamps become
 * ISO-8601 strings with microseconds; int64 stays bigint.
 */
export function toRows(table: Table): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = new Array(table.length)
  for (let i = 0; i < table.length; i++) {
    const row: Record<string, unknown> = {}
    for (const { name, type } of table.schema) {
      const col = columnOr(table, name, type)
      if (col.type === 'timestamp') {
        const v = col.values[i]
        row[name] = Number.isNaN(v) ? null : formatUs(v)
      } else row[name] = cell(col, i)
    }
    rows[i] = row
  }
  return rows
}
