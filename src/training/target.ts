/**
 * Targets per row of a table sorted by (symbol, timestamp): a stored column as is, or a value
 * derived from a price column `horizon` rows ahead *within the same symbol* (never across
 * symbols). Each target comes with the timestamp it looks at, so a split can purge rows whose
 * label lies beyond their segment.
 */

import { ValidationError } from '../core/errors.js'
import { BOOL_NULL, type Column, type Table } from '../core/types.js'
import type { DerivedTarget, TargetSpec } from './options.js'

export interface TargetColumn {
  /** The target per row; NaN where it cannot be computed (missing price, last `horizon` rows of a symbol). */
  values: Float64Array
  /** Epoch µs of the row the target looks at (the row's own timestamp for a stored column); NaN when none. */
  labelTs: Float64Array
}

/** A numeric column as float64 (int64 → number, boolean → 0/1; nulls → NaN); float64 columns are returned as is. */
export function numericValues(col: Column | undefined, name: string): Float64Array {
  if (!col) throw new ValidationError([{ field: name, message: 'no such column' }])
  switch (col.type) {
    case 'float64':
      return col.values
    case 'int64': {
      const out = new Float64Array(col.values.length)
      const nulls = col.nulls
      for (let i = 0; i < out.length; i++) out[i] = nulls?.[i] ? Number.NaN : Number(col.values[i])
      return out
    }
    case 'boolean': {
      const out = new Float64Array(col.values.length)
      for (let i = 0; i < out.length; i++) out[i] = col.values[i] === BOOL_NULL ? Number.NaN : col.values[i]
      return out
    }
    default:
      throw new ValidationError([
        { field: name, message: `expected a numeric column (float64, int64, boolean), got ${col.type}` },
      ])
  }
}

/** Computes `spec` over `table` (sorted by symbol, timestamp). */
export function computeTarget(table: Table, spec: TargetSpec): TargetColumn {
  const n = table.length
  const ts = (table.columns.timestamp as { values: Float64Array }).values
  const price = numericValues(table.columns[spec.column], spec.kind === 'column' ? 'target' : 'target.column')
  if (spec.kind === 'column') return { values: price, labelTs: ts }
  const h = spec.horizon
  const values = new Float64Array(n).fill(Number.NaN)
  const labelTs = new Float64Array(n).fill(Number.NaN)
  const symbols = (table.columns.symbol as { values: (string | null)[] }).values
  const derive = DERIVE[spec.kind]
  let runStart = 0
  for (let i = 1; i <= n; i++) {
    if (i < n && symbols[i] === symbols[i - 1]) continue
    // [runStart, i) is one symbol: row r looks at row r + h when that is still inside the run.
    deriveRun(derive, price, ts, values, labelTs, runStart, i, h)
    runStart = i
  }
  return { values, labelTs }
}

function deriveRun(
  derive: (p0: number, p1: number) => number,
  price: Float64Array,
  ts: Float64Array,
  values: Float64Array,
  labelTs: Float64Array,
  lo: number,
  hi: number,
  h: number,
): void {
  for (let r = lo; r + h < hi; r++) {
    labelTs[r] = ts[r + h]
    values[r] = derive(price[r], price[r + h])
  }
}

const finite = (v: number): number => (Number.isFinite(v) ? v : Number.NaN)

/** Each derived target from the price `p0` of a row and `p1` of the row `horizon` ahead (NaN when undefined). */
const DERIVE: Record<DerivedTarget, (p0: number, p1: number) => number> = {
  returns: (p0, p1) => finite(p1 / p0 - 1),
  log_returns: (p0, p1) => finite(Math.log(p1 / p0)),
  direction: (p0, p1) => (p0 === p0 && p1 === p1 ? (p1 > p0 ? 1 : 0) : Number.NaN),
  value: (_p0, p1) => finite(p1),
}

/** The target of a row from its price and the price `horizon` rows ahead (NaN when undefined). */
export function targetValue(t: TargetSpec, p0: number, p1: number): number {
  return t.kind === 'column' ? p0 : DERIVE[t.kind](p0, p1)
}
