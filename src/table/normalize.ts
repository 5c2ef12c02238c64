/**
 * Input normalization: rows, columns or a Table in; a validated columnar Table out. All checks
 * happen here, before anything is written. Errors name the row index and the field.
 */

import { type FieldIssue, SchemaConflictError, ValidationError } from '../core/errors.js'
import { columnNameProblem, describeValue, ILL_FORMED_MESSAGE, isWellFormedString, symbolProblem } from '../core/keys.js'
import { KEY_SCHEMA } from '../core/table.js'
import { checkTimeUs, epochNumberToUs, formatUs, isTimeUsInRange, parseTimeUs, type TimeUnit } from '../core/time.js'
import {
  BOOL_NULL,
  type Column,
  type ColumnSchema,
  type ColumnType,
  type InputColumns,
  type InputRow,
  type Schema,
  type Table,
} from '../core/types.js'
import { checkDatasetColumns, checkRequestColumns, DEFAULT_LIMITS, type InputLimits } from './limits.js'

const TIME_ALIASES = ['timestamp', 'datetime', 'date'] as const
/** Names a data column may not take: partition keys appear as hive path columns. */
const RESERVED = new Set(['date', 'month', 'datetime'])
const MAX_ISSUES = 20

/**
 * A time column already parsed to UTC epoch microseconds (e.g. ISO strings read by a body
 * parser), taken as is. A plain number (or BigInt) in a time column is an epoch count in the
 * write's `timeUnit` (milliseconds when none is given).
 */
export class EpochMicros extends Float64Array {}

export interface Normalized {
  /** Key columns first, then the batch's columns with their resolved types. */
  table: Table
  /** Columns the dataset schema does not have yet. */
  newColumns: ColumnSchema[]
}

class Issues {
  list: FieldIssue[] = []
  add(row: number | undefined, field: string, message: string): void {
    if (this.list.length < MAX_ISSUES) this.list.push(row === undefined ? { field, message } : { row, field, message })
  }
  get full(): boolean {
    return this.list.length >= MAX_ISSUES
  }
  throwIfAny(): void {
    if (this.list.length) throw new ValidationError(this.list)
  }
}

export function isTable(data: unknown): data is Table {
  const t = data as Table
  return (
    typeof t === 'object' &&
    t !== null &&
    !Array.isArray(t) &&
    typeof t.length === 'number' &&
    Array.isArray(t.schema) &&
    typeof t.columns === 'object' &&
    t.columns !== null
  )
}

export type ColumnLimits = Pick<InputLimits, 'maxColumnsPerDataset' | 'maxColumnsPerRequest'>

const UNLIMITED: ColumnLimits = { maxColumnsPerDataset: Number.MAX_SAFE_INTEGER, maxColumnsPerRequest: Number.MAX_SAFE_INTEGER }

/**
 * `write(ds, rows, { timeUnit })`: the input with the epoch numbers (and BigInts) of its time
 * columns read in `timeUnit` (`s`, `ms`, `us`, `ns`), exactly from their decimal form
 * (`String(v)`), so that `normalizeInput` takes them as they are: an all-numbers time column
 * becomes `EpochMicros`, a mixed one has its numbers written as ISO times. A value that is not a
 * whole microsecond (a fraction below the µs, a nanosecond count not a multiple of 1000) or is
 * outside the accepted range is a `ValidationError` naming row and field, never rounded. No
 * unit, or a Table (its timestamps are typed): the input unchanged. Backends call it first in
 * `write`; the column limits are checked after, by `normalizeInput`.
 */
export function applyTimeUnit(
  data: InputRow[] | InputColumns | Table,
  unit: TimeUnit | undefined,
): InputColumns | InputRow[] | Table {
  if (unit === undefined || isTable(data)) return data
  if (unit !== 's' && unit !== 'ms' && unit !== 'us' && unit !== 'ns')
    throw new ValidationError([{ field: 'timeUnit', message: `expected s, ms, us or ns, got ${describeValue(unit)}` }])
  if (typeof data !== 'object' || data === null) return data
  const columns: InputColumns = Array.isArray(data) ? rowsToColumns(data, UNLIMITED) : { ...data }
  const issues = new Issues()
  for (const alias of TIME_ALIASES) {
    const values = columns[alias]
    if (values === undefined || values === null || values instanceof EpochMicros || typeof values.length !== 'number') continue
    const n = values.length
    const us = new EpochMicros(n)
    let all = true
    for (let i = 0; i < n; i++) {
      const v = values[i]
      let read: number | string
      if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'bigint') read = epochNumberToUs(v, unit, true)
      else {
        all = false
        continue
      }
      if (typeof read === 'string') issues.add(i, alias, read)
      else us[i] = read
    }
    // numbers mixed with other time values: the numbers become exact ISO text, the rest stay
    columns[alias] = all
      ? us
      : Array.from(values, (v, i) =>
          (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'bigint' ? formatUs(us[i]) : v,
        )
  }
  issues.throwIfAny()
  return columns
}

/**
 * Normalizes any accepted input against the dataset's existing schema (null when new). Every
 * time must lie in the accepted range (`checkTimeUs`), every string be well-formed Unicode;
 * `limits` bounds the columns of the write and of the dataset after it (`LimitExceededError`).
 */
export function normalizeInput(
  data: InputRow[] | InputColumns | Table,
  existing: Schema | null,
  limits: ColumnLimits = DEFAULT_LIMITS,
): Normalized {
  let out: Normalized
  if (isTable(data)) {
    checkRequestColumns(data.schema.length, limits)
    out = normalizeTable(data, existing)
  } else if (Array.isArray(data)) out = normalizeColumns(rowsToColumns(data, limits), data.length, existing)
  else if (typeof data !== 'object' || data === null) {
    throw new ValidationError([{ field: 'body', message: 'expected an array of rows or an object of columns' }])
  } else out = normalizeColumns(data, columnsLength(data, limits), existing)
  if (out.newColumns.length > 0) checkDatasetColumns(existing?.length ?? KEY_SCHEMA.length, out.newColumns.length, limits)
  return out
}

/** The message for a time outside the accepted range (or not a whole µs), showing the value. */
function timeIssue(us: number, value: unknown): string | null {
  const problem = checkTimeUs(us)
  if (problem === null) return null
  return `${problem}, got ${JSON.stringify(describeTime(value))}`
}

function rowsToColumns(rows: InputRow[], limits: ColumnLimits): InputColumns {
  const issues = new Issues()
  const n = rows.length
  const cols = new Map<string, unknown[]>()
  for (let i = 0; i < n; i++) {
    const row = rows[i]
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      issues.add(i, 'row', `expected an object, got ${describeValue(row)}`)
      if (issues.full) break
      continue
    }
    for (const key in row) {
      let arr = cols.get(key)
      if (!arr) {
        checkRequestColumns(cols.size + 1, limits) // before allocating the column
        arr = new Array(n)
        cols.set(key, arr)
      }
      arr[i] = row[key]
    }
  }
  issues.throwIfAny()
  return Object.fromEntries(cols)
}

function columnsLength(data: InputColumns, limits: ColumnLimits): number {
  let n: number | undefined
  const issues = new Issues()
  checkRequestColumns(Object.keys(data).length, limits)
  for (const [name, values] of Object.entries(data)) {
    if (values === null || typeof values !== 'object' || typeof (values as ArrayLike<unknown>).length !== 'number') {
      issues.add(undefined, name, 'expected an array of values')
      continue
    }
    if (n === undefined) n = values.length
    else if (values.length !== n) issues.add(undefined, name, `column has ${values.length} values, expected ${n}`)
  }
  issues.throwIfAny()
  return n ?? 0
}

function normalizeColumns(data: InputColumns, n: number, existing: Schema | null): Normalized {
  const issues = new Issues()
  if (n === 0)
    return { table: { length: 0, schema: KEY_SCHEMA, columns: keyColumns(new Array(0), new Float64Array(0)) }, newColumns: [] }

  const present = TIME_ALIASES.filter((a) => data[a] !== undefined)
  if (!data.symbol) issues.add(0, 'symbol', 'missing: every row needs a symbol')
  if (present.length === 0)
    issues.add(0, 'timestamp', "missing: every row needs a time column ('timestamp', 'datetime' or 'date')")
  issues.throwIfAny()

  // symbol
  const symIn = data.symbol
  const symbols = new Array<string>(n)
  let lastValid: unknown // a batch is mostly runs of one symbol: check each distinct run once
  for (let i = 0; i < n; i++) {
    const s = symIn[i]
    if (s === lastValid) {
      symbols[i] = s as string
      continue
    }
    const problem = s === undefined || s === null ? 'missing: every row needs a symbol' : symbolProblem(s)
    if (problem) {
      issues.add(i, 'symbol', problem)
      if (issues.full) break
    } else {
      symbols[i] = s as string
      lastValid = s
    }
  }

  // time: per row, the first alias present wins; more than one present in a row is ambiguous
  const ts = new Float64Array(n)
  for (let i = 0; i < n && !issues.full; i++) {
    let field: string | undefined
    let value: unknown
    let micros = false
    for (const a of present) {
      const col = data[a]
      const v = col[i]
      if (v === undefined || v === null) continue
      if (field !== undefined) {
        issues.add(i, a, `ambiguous time: both '${field}' and '${a}' are given`)
        break
      }
      field = a
      value = v
      micros = col instanceof EpochMicros
    }
    if (field === undefined) {
      issues.add(i, present[0], "missing: every row needs a time ('timestamp', 'datetime' or 'date')")
      continue
    }
    let us: number | null
    if (micros) us = Number.isFinite(value) ? (value as number) : null
    else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'bigint') {
      // epoch milliseconds, the default unit: no unit was named (`applyTimeUnit` turned the numbers
      // of a named unit into EpochMicros), so a value implausible as milliseconds (|v| < 1e11,
      // probably seconds) is refused naming the unit to pass, never stored as a 1970 instant
      const read = epochNumberToUs(value, 'ms', false)
      if (typeof read === 'string') {
        issues.add(i, field, read)
        continue
      }
      us = read
    } else us = parseTimeUs(value)
    if (us === null) {
      issues.add(
        i,
        field,
        `cannot parse time ${JSON.stringify(describeTime(value))}: expected an epoch number (time_unit, default milliseconds), an ISO-8601 string (at most microseconds: digits after the 6th fraction digit must be zeros) or a Date`,
      )
      continue
    }
    const bad = timeIssue(us, micros ? formatTimeSafe(us) : value)
    if (bad) issues.add(i, field, bad)
    else ts[i] = us
  }

  // data columns
  const existingTypes = new Map((existing ?? []).map((c) => [c.name, c.type]))
  const schema: Schema = [...KEY_SCHEMA]
  const columns: Record<string, Column> = keyColumns(symbols, ts)
  const newColumns: ColumnSchema[] = []
  for (const name of Object.keys(data)) {
    if (name === 'symbol' || (TIME_ALIASES as readonly string[]).includes(name)) continue
    if (issues.full) break
    const problem = RESERVED.has(name) ? 'reserved name (partition or time column)' : columnNameProblem(name)
    if (problem) {
      issues.add(undefined, name, problem)
      continue
    }
    const known = existingTypes.get(name)
    const col = known ? convertToType(name, data[name], n, known, issues, true) : inferColumn(name, data[name], n, issues)
    if (!col) continue
    schema.push({ name, type: col.type })
    columns[name] = col
    if (!known) newColumns.push({ name, type: col.type })
  }
  issues.throwIfAny()
  return { table: { length: n, schema, columns }, newColumns }
}

function keyColumns(symbols: string[], ts: Float64Array): Record<string, Column> {
  return { symbol: { type: 'string', values: symbols }, timestamp: { type: 'timestamp', values: ts } }
}

function describeTime(v: unknown): unknown {
  if (typeof v === 'string') return v.length > 60 ? `${v.slice(0, 60)}...` : v
  if (typeof v === 'number') return String(v)
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()
  return describeValue(v)
}

type Kind = ColumnType | 'null' | 'invalid'

function kindOf(v: unknown): Kind {
  if (v === null || v === undefined) return 'null'
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? 'float64' : 'invalid'
    case 'bigint':
      return 'int64'
    case 'string':
      return 'string'
    case 'boolean':
      return 'boolean'
  }
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'invalid' : 'timestamp'
  return 'invalid'
}

function invalidMessage(v: unknown): string {
  if (typeof v === 'number') return `${Number.isNaN(v) ? 'NaN' : 'Infinity'} is not allowed: send null for a missing value`
  if (v instanceof Date) return 'invalid Date'
  return `unsupported value (${describeValue(v)}): expected a number, string, boolean, Date or null`
}

/** Infers a new column's type from its values: first non-null kind; numbers with a bigint make int64. */
function inferColumn(name: string, values: ArrayLike<unknown>, n: number, issues: Issues): Column | null {
  if (values instanceof Float64Array) return convertToType(name, values, n, 'float64', issues, false)
  if (values instanceof BigInt64Array) return convertToType(name, values, n, 'int64', issues, false)
  let type: ColumnType | null = null
  let sawBigint = false
  for (let i = 0; i < n; i++) {
    const k = kindOf(values[i])
    if (k === 'invalid') {
      issues.add(i, name, invalidMessage(values[i]))
      return null
    }
    if (k === 'null') continue
    if (k === 'int64') sawBigint = true
    if (type === null) type = k
  }
  if (type === null) return null // all null: the column is not created
  if (type === 'float64' && sawBigint) type = 'int64'
  return convertToType(name, values, n, type, issues, false)
}

/** Converts values to `type`; a mismatch is a SchemaConflictError for an existing column, else an issue. */
function convertToType(
  name: string,
  values: ArrayLike<unknown>,
  n: number,
  type: ColumnType,
  issues: Issues,
  existingColumn: boolean,
): Column | null {
  const mismatch = (i: number, v: unknown): null => {
    const k = kindOf(v)
    if (k === 'invalid') issues.add(i, name, invalidMessage(v))
    else if (existingColumn) throw new SchemaConflictError(name, type, kindName(v), i)
    else issues.add(i, name, `expected ${type} like the column's other values, got ${kindName(v)}`)
    return null
  }
  switch (type) {
    case 'float64':
    case 'timestamp': {
      const out = new Float64Array(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (v === null || v === undefined) out[i] = Number.NaN
        else if (type === 'float64' && typeof v === 'number' && Number.isFinite(v)) out[i] = v
        else if (type === 'timestamp' && v instanceof Date && !Number.isNaN(v.getTime())) {
          const us = v.getTime() * 1000
          const bad = timeIssue(us, v)
          if (bad) {
            issues.add(i, name, bad)
            return null
          }
          out[i] = us
        } else return mismatch(i, v)
      }
      return { type, values: out }
    }
    case 'int64': {
      const out = new BigInt64Array(n)
      let nulls: Uint8Array | undefined
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (v === null || v === undefined) {
          nulls ??= new Uint8Array(n)
          nulls[i] = 1
        } else if (typeof v === 'bigint') {
          if (v < -(2n ** 63n) || v >= 2n ** 63n) {
            issues.add(i, name, 'integer out of int64 range')
            return null
          }
          out[i] = v
        } else if (typeof v === 'number' && Number.isSafeInteger(v)) out[i] = BigInt(v)
        else return mismatch(i, v)
      }
      return nulls ? { type, values: out, nulls } : { type, values: out }
    }
    case 'boolean': {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (v === null || v === undefined) out[i] = BOOL_NULL
        else if (typeof v === 'boolean') out[i] = v ? 1 : 0
        else return mismatch(i, v)
      }
      return { type, values: out }
    }
    case 'string': {
      const out = new Array<string | null>(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (v === null || v === undefined) out[i] = null
        else if (typeof v === 'string') {
          if (!isWellFormedString(v)) {
            issues.add(i, name, ILL_FORMED_MESSAGE)
            return null
          }
          out[i] = v
        } else return mismatch(i, v)
      }
      return { type, values: out }
    }
  }
}

function kindName(v: unknown): string {
  const k = kindOf(v)
  if (k === 'float64' && Number.isInteger(v)) return 'float64 (integer number)'
  return k === 'invalid' ? describeValue(v) : k
}

/** A Table input (e.g. from `read`): checks keys and types, no per-value conversion. */
function normalizeTable(t: Table, existing: Schema | null): Normalized {
  const issues = new Issues()
  const sym = t.columns.symbol
  const ts = t.columns.timestamp
  if (sym?.type !== 'string') issues.add(undefined, 'symbol', 'table needs a string column symbol')
  if (ts?.type !== 'timestamp') issues.add(undefined, 'timestamp', 'table needs a timestamp column')
  issues.throwIfAny()
  for (let i = 0; i < t.length && !issues.full; i++) {
    const p = symbolProblem(sym.values[i])
    if (p) issues.add(i, 'symbol', p)
    const v = (ts.values as Float64Array)[i]
    const bad = Number.isNaN(v) ? 'missing or invalid time' : timeIssue(v, formatTimeSafe(v))
    if (bad) issues.add(i, 'timestamp', bad)
  }
  const existingTypes = new Map((existing ?? []).map((c) => [c.name, c.type]))
  const schema: Schema = [...KEY_SCHEMA]
  const newColumns: ColumnSchema[] = []
  for (const c of t.schema) {
    if (c.name === 'symbol' || c.name === 'timestamp') continue
    const problem = RESERVED.has(c.name) ? 'reserved name (partition or time column)' : columnNameProblem(c.name)
    if (problem) issues.add(undefined, c.name, problem)
    const col = t.columns[c.name]
    if (!col || col.type !== c.type) {
      issues.add(undefined, c.name, 'column missing or its type differs from the schema')
      continue
    }
    if (c.type === 'float64') {
      const v = col.values as Float64Array
      for (let i = 0; i < t.length; i++) {
        if (v[i] === Number.POSITIVE_INFINITY || v[i] === Number.NEGATIVE_INFINITY) {
          issues.add(i, c.name, invalidMessage(v[i]))
          break
        }
      }
    } else if (c.type === 'timestamp') {
      const v = col.values as Float64Array
      for (let i = 0; i < t.length; i++) {
        if (Number.isNaN(v[i]) || isTimeUsInRange(v[i])) continue // NaN: null
        issues.add(i, c.name, timeIssue(v[i], formatTimeSafe(v[i])) as string)
        break
      }
    } else if (c.type === 'string') {
      const v = col.values as (string | null)[]
      for (let i = 0; i < t.length; i++) {
        if (typeof v[i] === 'string' && !isWellFormedString(v[i] as string)) {
          issues.add(i, c.name, ILL_FORMED_MESSAGE)
          break
        }
      }
    }
    const known = existingTypes.get(c.name)
    if (known && known !== c.type) throw new SchemaConflictError(c.name, known, c.type)
    if (!known) newColumns.push(c)
    schema.push(c)
  }
  issues.throwIfAny()
  return { table: { length: t.length, schema, columns: t.columns }, newColumns }
}

/** An epoch-µs time as text for a message, whatever its value (`formatUs` fails past year 275760). */
function formatTimeSafe(us: number): string {
  const d = new Date(Math.floor(us / 1000))
  return Number.isNaN(d.getTime()) ? `${us} µs since the epoch` : formatUs(us)
}
