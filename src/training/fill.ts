/**
 * Missing values per column of a `Table` sorted by (symbol, timestamp): forward or backward fill
 * within one symbol (never across symbols, nor across `within` groups such as split segments),
 * a constant, or the mean/median of the training rows only; or drop the rows. Column types are
 * preserved, the input is not modified, and the result counts what was filled and dropped.
 */

import { ValidationError } from '../core/errors.js'
import { isSorted, take } from '../core/table.js'
import { BOOL_NULL, type Column, type Table } from '../core/types.js'
import { quantile } from './scaler.js'

export type FillMethod = 'ffill' | 'bfill' | 'drop' | 'constant' | 'mean' | 'median'

export type FillSpec =
  | { method: 'ffill' | 'bfill' | 'drop' | 'mean' | 'median' }
  | { method: 'constant'; value: number | bigint | string | boolean }

export interface FillOptions {
  /** What to do per column; columns not named are left as they are. */
  columns: Record<string, FillMethod | FillSpec>
  /** Training rows (e.g. `split.train.rows`): where `mean`/`median` statistics come from. Required for those. */
  trainRows?: ArrayLike<number>
  /**
   * A group id per row (e.g. `segmentIds(...)`): forward/backward fills also stop where it
   * changes, so a backward fill never pulls a validation value into a training row.
   */
  within?: ArrayLike<number>
}

export interface ColumnFillReport {
  method: FillMethod
  /** Nulls replaced by a value. */
  filled: number
  /** Rows dropped because this column was null (a row null in two `drop` columns counts in both). */
  dropped: number
  /** Nulls left (leading nulls of a forward fill, a statistic with no training values...). */
  remaining: number
  /** The value used by `constant`, `mean` and `median` (`null` when the training rows had none). */
  value?: number | string | boolean | null
}

export interface FillResult {
  table: Table
  /** For each output row, its row index in the input table (rows are dropped, never reordered). */
  rowIndex: Uint32Array
  rowsDropped: number
  columns: Record<string, ColumnFillReport>
}

export function fillMissing(table: Table, options: FillOptions): FillResult {
  const n = table.length
  const within = options.within
  if (within && within.length !== n) {
    throw new ValidationError([{ field: 'within', message: `has ${within.length} entries, the table ${n} rows` }])
  }
  const specs = Object.entries(options.columns).map(([name, s]): [string, FillSpec] => [
    name,
    typeof s === 'string' ? ({ method: s } as FillSpec) : s,
  ])
  const needsOrder = specs.some(([, s]) => s.method === 'ffill' || s.method === 'bfill')
  if (needsOrder && !isSorted(table)) {
    throw new ValidationError([{ field: 'table', message: 'forward/backward fill needs a table sorted by (symbol, timestamp)' }])
  }
  const symbols = table.columns.symbol?.values as (string | null)[] | undefined
  // boundary[i] = 1 when row i starts a new run (symbol or group changes): fills never cross it.
  const boundary = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    boundary[i] = i === 0 || symbols?.[i] !== symbols?.[i - 1] || (within !== undefined && within[i] !== within[i - 1]) ? 1 : 0
  }

  const columns: Record<string, Column> = { ...table.columns }
  const reports: Record<string, ColumnFillReport> = {}
  const drop = new Uint8Array(n)
  for (const [name, spec] of specs) {
    const src = table.columns[name]
    if (!src) throw new ValidationError([{ field: name, message: 'no such column' }])
    if (name === 'symbol' || name === 'timestamp') {
      throw new ValidationError([{ field: name, message: 'key columns cannot be filled' }])
    }
    const col = copyColumn(src)
    const isNull = nullTest(col)
    const report: ColumnFillReport = { method: spec.method, filled: 0, dropped: 0, remaining: 0 }
    switch (spec.method) {
      case 'ffill':
        for (let i = 0; i < n; i++) {
          if (isNull(i) && !boundary[i] && !isNull(i - 1)) {
            copyCell(col, i - 1, i)
            report.filled++
          }
        }
        break
      case 'bfill':
        for (let i = n - 2; i >= 0; i--) {
          if (isNull(i) && !boundary[i + 1] && !isNull(i + 1)) {
            copyCell(col, i + 1, i)
            report.filled++
          }
        }
        break
      case 'drop':
        for (let i = 0; i < n; i++) {
          if (isNull(i)) {
            drop[i] = 1
            report.dropped++
          }
        }
        break
      case 'constant':
        report.value = setConstant(col, name, spec.value, isNull, report)
        break
      case 'mean':
      case 'median': {
        if (!options.trainRows) {
          throw new ValidationError([
            {
              field: 'trainRows',
              message: `${spec.method} fill of '${name}' needs trainRows: statistics come from training rows only`,
            },
          ])
        }
        const stat = trainStatistic(src, name, spec.method, options.trainRows, n)
        if (Number.isNaN(stat)) {
          report.value = null
          break
        }
        const value = col.type === 'int64' ? BigInt(Math.round(stat)) : stat
        report.value = col.type === 'int64' ? Number(value) : stat
        setConstant(col, name, value, isNull, report)
        break
      }
      default:
        throw new ValidationError([{ field: name, message: `unknown fill method '${(spec as { method: string }).method}'` }])
    }
    columns[name] = col
    reports[name] = report
  }

  let kept = 0
  for (let i = 0; i < n; i++) if (!drop[i]) kept++
  const rowIndex = new Uint32Array(kept)
  for (let i = 0, j = 0; i < n; i++) if (!drop[i]) rowIndex[j++] = i
  const filled: Table = { length: n, schema: table.schema, columns }
  const out = kept === n ? filled : take(filled, rowIndex)
  for (const [name] of specs) reports[name].remaining = countNulls(out.columns[name])
  return { table: out, rowIndex, rowsDropped: n - kept, columns: reports }
}

function trainStatistic(col: Column, name: string, method: 'mean' | 'median', rows: ArrayLike<number>, n: number): number {
  if (col.type !== 'float64' && col.type !== 'int64') {
    throw new ValidationError([{ field: name, message: `${method} fill needs a float64 or int64 column, got ${col.type}` }])
  }
  const vals = new Float64Array(rows.length)
  let m = 0
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k]
    if (!(r >= 0 && r < n))
      throw new ValidationError([{ field: 'trainRows', message: `row ${r} is outside the table's ${n} rows` }])
    if (col.type === 'float64') {
      const v = col.values[r]
      if (v === v) vals[m++] = v
    } else if (!col.nulls?.[r]) {
      vals[m++] = Number(col.values[r])
    }
  }
  if (m === 0) return Number.NaN
  const v = vals.subarray(0, m)
  if (method === 'median') return quantile(v.sort(), 0.5)
  let sum = 0
  for (let i = 0; i < m; i++) sum += v[i]
  return sum / m
}

function setConstant(
  col: Column,
  name: string,
  value: unknown,
  isNull: (i: number) => boolean,
  report: ColumnFillReport,
): number | string | boolean {
  const wrong = () =>
    new ValidationError([{ field: name, message: `constant ${String(value)} does not fit a ${col.type} column` }])
  const n = col.values.length
  switch (col.type) {
    case 'float64':
    case 'timestamp': {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw wrong()
      for (let i = 0; i < n; i++) {
        if (!isNull(i)) continue
        col.values[i] = value
        report.filled++
      }
      return value
    }
    case 'int64': {
      const v = typeof value === 'bigint' ? value : typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : null
      if (v === null) throw wrong()
      const nulls = col.nulls!
      for (let i = 0; i < n; i++) {
        if (!isNull(i)) continue
        col.values[i] = v
        nulls[i] = 0
        report.filled++
      }
      return Number(v)
    }
    case 'boolean': {
      if (typeof value !== 'boolean') throw wrong()
      for (let i = 0; i < n; i++) {
        if (!isNull(i)) continue
        col.values[i] = value ? 1 : 0
        report.filled++
      }
      return value
    }
    case 'string': {
      if (typeof value !== 'string') throw wrong()
      for (let i = 0; i < n; i++) {
        if (!isNull(i)) continue
        col.values[i] = value
        report.filled++
      }
      return value
    }
  }
}

/** A copy the fill may write to; int64 always gets a null mask. */
function copyColumn(col: Column): Column {
  switch (col.type) {
    case 'float64':
    case 'timestamp':
      return { type: col.type, values: col.values.slice() }
    case 'int64':
      return {
        type: 'int64',
        values: col.values.slice(),
        nulls: col.nulls ? col.nulls.slice() : new Uint8Array(col.values.length),
      }
    case 'boolean':
      return { type: 'boolean', values: col.values.slice() }
    case 'string':
      return { type: 'string', values: col.values.slice() }
  }
}

/** A null test reading the column's current (mutating) contents. */
function nullTest(col: Column): (i: number) => boolean {
  switch (col.type) {
    case 'float64':
    case 'timestamp': {
      const v = col.values
      return (i) => Number.isNaN(v[i])
    }
    case 'int64': {
      const m = col.nulls!
      return (i) => m[i] === 1
    }
    case 'boolean': {
      const v = col.values
      return (i) => v[i] === BOOL_NULL
    }
    case 'string': {
      const v = col.values
      return (i) => v[i] === null
    }
  }
}

function copyCell(col: Column, from: number, to: number): void {
  col.values[to] = col.values[from] as never
  if (col.type === 'int64') col.nulls![to] = col.nulls![from]
}

function countNulls(col: Column): number {
  const isNull = nullTest(col.type === 'int64' && !col.nulls ? { ...col, nulls: new Uint8Array(col.values.length) } : col)
  let c = 0
  for (let i = 0; i < col.values.length; i++) if (isNull(i)) c++
  return c
}
