/**
 * A decoded Parquet body (a `Table`) read as the `ColumnPlan` says: renamed columns, a raw
 * INT64 or DOUBLE `timestamp` (no TIMESTAMP logical type) read as epoch numbers in the body's
 * `time_unit` exactly like CSV and JSON numbers, declared types applied where the conversion is
 * exact, one symbol for every row. A TIMESTAMP column carries its own unit and is taken as is.
 */

import { ValidationError } from '../core/errors.js'
import { epochToUs } from '../core/time.js'
import type { Column, ColumnSchema, Table } from '../core/types.js'
import type { ColumnPlan, DeclaredType } from './column-options.js'

function refuse(field: string, message: string, row?: number): never {
  throw new ValidationError([row === undefined ? { field, message } : { row, field, message }])
}

/** The raw epoch numbers of a `timestamp` column in the plan's unit → an epoch-µs timestamp column. */
function timeFromNumbers(col: Column, length: number, plan: ColumnPlan): Column {
  const out = new Float64Array(length)
  for (let i = 0; i < length; i++) {
    let text: string
    if (col.type === 'int64') {
      if (col.nulls?.[i] === 1) refuse('timestamp', 'missing: every row needs a time', i)
      text = String(col.values[i])
    } else {
      const v = (col.values as Float64Array)[i]
      if (!Number.isFinite(v)) refuse('timestamp', 'missing or invalid time', i)
      text = String(v)
    }
    const us = epochToUs(text, plan.timeUnit, plan.unitGiven)
    if (typeof us === 'string') refuse('timestamp', us, i)
    out[i] = us
  }
  return { type: 'timestamp', values: out }
}

/** A column converted to its declared type, exactly, or a `ValidationError` naming row and column. */
function declared(name: string, col: Column, type: DeclaredType, length: number): Column {
  if (col.type === type) return col
  if (type === 'int64' && col.type === 'float64') {
    const values = new BigInt64Array(length)
    let nulls: Uint8Array | undefined
    for (let i = 0; i < length; i++) {
      const v = col.values[i]
      if (Number.isNaN(v)) {
        nulls ??= new Uint8Array(length)
        nulls[i] = 1
      } else if (Number.isSafeInteger(v)) values[i] = BigInt(v)
      else refuse(name, `expected an integer (declared int64), got ${v}`, i)
    }
    return nulls ? { type, values, nulls } : { type, values }
  }
  if (type === 'float64' && col.type === 'int64') {
    const values = new Float64Array(length)
    for (let i = 0; i < length; i++) {
      const v = col.values[i]
      if (col.nulls?.[i] === 1) values[i] = Number.NaN
      else if (BigInt(Number(v)) === v) values[i] = Number(v)
      else refuse(name, `${v} has more digits than a float64 holds (declared float64): it cannot be stored exactly`, i)
    }
    return { type, values }
  }
  return refuse(name, `the column is ${col.type} in the Parquet file: it cannot be read as ${type} (declared)`)
}

/** Applies renames, the time unit, declared types and the one symbol to a decoded table. */
export function applyPlanToTable(table: Table, plan: ColumnPlan): Table {
  const schema: ColumnSchema[] = []
  const columns: Record<string, Column> = Object.create(null)
  const from = new Map<string, string>()
  for (const c of table.schema) {
    const name = plan.nameOf(c.name)
    if (from.has(name)) refuse(name, `columns '${from.get(name)}' and '${c.name}' would both be stored as '${name}' (rename)`)
    from.set(name, c.name)
    let col = table.columns[c.name]
    const special = plan.specialOf(name)
    if (name === 'timestamp' && (col.type === 'int64' || col.type === 'float64')) col = timeFromNumbers(col, table.length, plan)
    else if (special !== undefined && special !== 'time') col = declared(name, col, special, table.length)
    schema.push({ name, type: col.type })
    columns[name] = col
  }
  if (plan.symbol !== undefined) {
    if (from.has('symbol')) {
      const message = `the body has a symbol column ('${from.get('symbol')}'): a symbol for every row is only for bodies without one`
      refuse('symbol', message)
    }
    schema.unshift({ name: 'symbol', type: 'string' })
    columns.symbol = { type: 'string', values: new Array<string>(table.length).fill(plan.symbol) }
  }
  return { length: table.length, schema, columns: { ...columns } }
}
