/**
 * Rows <-> MongoDB documents. One document per (symbol, timestamp):
 *
 *   { _id: ObjectId(sha256(symbol NUL µs)[0..12]), symbol, t: <epoch µs>, timestamp: <BSON Date, ms>,
 *     v: { <column>: value, ... }, r?: { <timestamp column>: <µs remainder 1-999> } }
 *
 * - `_id` is derived from the key, so uniqueness and upsert idempotence rest on `_id` (the one
 *   index every MongoDB-speaking server enforces). It is an ObjectId because CongoDB accepts no
 *   other `_id` type. Writes always filter on `{ _id, symbol, t }`: a (vanishingly unlikely,
 *   2^-96 per pair) hash collision becomes a duplicate-key error, never a silent overwrite.
 * - `t` holds epoch microseconds as a double (exact: times are safe integers); `timestamp` the
 *   same instant as a BSON Date for tools. Data columns live under `v` so no column name can
 *   collide with `_id`, `symbol` or `t`; nulls are omitted.
 * - float64 → double, int64 → BSON Long (exact beyond 2^53; read back with `useBigInt64`),
 *   string, boolean, timestamp → BSON Date (ms) plus its µs remainder under `r`.
 * - `w` is the write stamp: an ObjectId per write call, set on every document the call stores.
 *   Deletes that must remove exactly the version they saw (replace, append roll-back, retention)
 *   match `{ _id, w }`, so a concurrent upsert of the same key is never deleted unseen. Documents
 *   written before stamps existed have none (`w: null` matches them).
 * - BSON strings are UTF-8: a lone surrogate (an ill-formed UTF-16 string) would be stored as
 *   U+FFFD, so distinct keys would become one. `assertWellFormed` refuses such batches.
 */

import { createHash } from 'node:crypto'
import type { ObjectId } from 'mongodb'
import { type FieldIssue, ValidationError } from '../../core/errors.js'
import { take, uninitializedColumn } from '../../core/table.js'
import { BOOL_NULL, type Column, type Schema, type Table } from '../../core/types.js'
import { mongo, objectId } from './mongo-driver.js'

export type CellValue = number | bigint | string | boolean | Date

export interface RowDoc {
  _id?: ObjectId
  symbol: string
  t: number
  timestamp?: Date
  v?: Record<string, unknown>
  r?: Record<string, number>
  /** Write stamp (see the module doc). */
  w?: ObjectId
}

/** A lone high surrogate or a lone low surrogate. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Throws `ValidationError` (naming row and field) when a symbol, a string value or a column name
 * is not well-formed UTF-16: BSON stores UTF-8, where a lone surrogate turns into U+FFFD, so
 * `X\uD800` and `X\uDFFF` would become the same stored key. `table` rows are in input order.
 */
export function assertWellFormed(table: Table): void {
  const issues: FieldIssue[] = []
  const bad = 'contains a lone UTF-16 surrogate (not valid Unicode; MongoDB stores UTF-8 and would alter it)'
  for (const c of table.schema) {
    if (LONE_SURROGATE.test(c.name)) issues.push({ field: c.name, message: `column name ${bad}` })
    const col = table.columns[c.name]
    if (col.type !== 'string') continue
    const values = col.values as (string | null)[]
    for (let i = 0; i < table.length && issues.length < 100; i++) {
      const x = values[i]
      if (x !== null && LONE_SURROGATE.test(x)) issues.push({ row: i, field: c.name, message: `${JSON.stringify(x)} ${bad}` })
    }
  }
  if (issues.length) throw new ValidationError(issues.sort((a, b) => (a.row ?? -1) - (b.row ?? -1)))
}

/** Largest row document accepted: MongoDB's 16 MiB BSON limit less room for the command around it. */
export const MAX_ROW_DOC_BYTES = 16 * 1024 * 1024 - 64 * 1024
/** Bytes a row document may need besides its strings (keys, numbers, ids), at most, for 1,024 columns. */
const NON_STRING_BYTES = 256 * 1024

/**
 * Throws `ValidationError` naming the row (and its longest string column) when a row's document
 * would pass MongoDB's 16 MiB limit: the driver would refuse it after the dataset and the batch's
 * other rows were written. Rows whose text cannot reach the limit are not encoded.
 */
export function assertDocumentSizes(table: Table): void {
  const text = table.schema.filter((c) => c.type === 'string')
  const values = text.map((c) => table.columns[c.name].values as (string | null)[])
  const sym = table.columns.symbol.values as string[]
  for (let i = 0; i < table.length; i++) {
    let chars = sym[i].length
    for (const v of values) chars += v[i]?.length ?? 0
    if (chars * 3 + NON_STRING_BYTES <= MAX_ROW_DOC_BYTES) continue
    const { BSON, ObjectId: Id } = mongo()
    const bytes = BSON.calculateObjectSize({ _id: new Id(), w: new Id(), ...toDocs(take(table, [i]))[0] })
    if (bytes <= MAX_ROW_DOC_BYTES) continue
    let longest = 0
    for (let j = 1; j < values.length; j++) if ((values[j][i]?.length ?? 0) > (values[longest][i]?.length ?? 0)) longest = j
    throw new ValidationError([
      {
        row: i,
        field: text[longest]?.name ?? 'symbol',
        message: `the row is ${bytes} bytes as a MongoDB document, more than ${MAX_ROW_DOC_BYTES} (MongoDB's limit is 16 MiB a document): store less text per row`,
      },
    ])
  }
}

/** The `_id` of a row: the first 12 bytes of SHA-256 over `symbol NUL epochMicros`. */
export function rowId(symbol: string, us: number): ObjectId {
  return objectId(createHash('sha256').update(`${symbol}\u0000${us}`).digest().subarray(0, 12))
}

/** The `_id` of a metadata document (dataset or partition), derived from its key the same way. */
export function metaId(...parts: string[]): ObjectId {
  return objectId(createHash('sha256').update(parts.join('\u0000')).digest().subarray(0, 12))
}

/** Documents (without `_id`) for the rows of a normalized table, in table order. */
export function toDocs(table: Table): RowDoc[] {
  const sym = table.columns.symbol.values as string[]
  const ts = table.columns.timestamp.values as Float64Array
  const data = table.schema.slice(2).map((c) => ({ name: c.name, col: table.columns[c.name] }))
  const docs = new Array<RowDoc>(table.length)
  for (let i = 0; i < table.length; i++) {
    const t = ts[i]
    const v: Record<string, unknown> = {}
    let r: Record<string, number> | undefined
    for (const { name, col } of data) {
      switch (col.type) {
        case 'float64': {
          const x = col.values[i]
          if (x === x) v[name] = x
          break
        }
        case 'timestamp': {
          const x = col.values[i]
          if (x !== x) break
          const ms = Math.floor(x / 1000)
          v[name] = new Date(ms)
          if (x - ms * 1000 !== 0) {
            r ??= {}
            r[name] = x - ms * 1000
          }
          break
        }
        case 'int64':
          if (col.nulls?.[i] !== 1) v[name] = col.values[i]
          break
        case 'boolean':
          if (col.values[i] !== BOOL_NULL) v[name] = col.values[i] === 1
          break
        case 'string': {
          const x = col.values[i]
          if (x !== null) v[name] = x
          break
        }
      }
    }
    const doc: RowDoc = { symbol: sym[i], t, timestamp: new Date(Math.floor(t / 1000)), v }
    if (r) doc.r = r
    docs[i] = doc
  }
  return docs
}

/** The projection reading `schema` (key columns plus data columns) back. */
export function projectionOf(schema: Schema): Record<string, 0 | 1> {
  const p: Record<string, 0 | 1> = { _id: 0, symbol: 1, t: 1 }
  for (const c of schema.slice(2)) {
    p[`v.${c.name}`] = 1
    if (c.type === 'timestamp') p[`r.${c.name}`] = 1
  }
  return p
}

/** Appends documents to preallocated columns, growing them as needed; `build()` gives a Table. */
export class TableBuilder {
  length = 0
  private capacity: number
  private symbols: string[] = []
  private ts: Float64Array
  private cols: Column[]

  constructor(
    readonly schema: Schema,
    capacity = 1024,
  ) {
    this.capacity = Math.max(1, capacity)
    this.ts = new Float64Array(this.capacity)
    this.cols = schema.slice(2).map((c) => uninitializedColumn(c.type, this.capacity))
  }

  push(doc: RowDoc): void {
    if (this.length === this.capacity) this.grow()
    const i = this.length++
    this.symbols.push(doc.symbol)
    this.ts[i] = Number(doc.t)
    const v = doc.v ?? {}
    for (let c = 0; c < this.cols.length; c++) {
      const name = this.schema[c + 2].name
      const col = this.cols[c]
      const x = v[name]
      const missing = x === undefined || x === null
      switch (col.type) {
        case 'float64':
          col.values[i] = missing ? Number.NaN : Number(x)
          break
        case 'timestamp':
          col.values[i] = missing ? Number.NaN : timeUs(x) + (doc.r?.[name] ?? 0)
          break
        case 'int64':
          if (missing) col.nulls![i] = 1
          else col.values[i] = typeof x === 'bigint' ? x : BigInt(Math.trunc(Number(x)))
          break
        case 'boolean':
          col.values[i] = missing ? BOOL_NULL : x ? 1 : 0
          break
        case 'string':
          col.values[i] = missing ? null : String(x)
          break
      }
    }
  }

  /** The rows pushed so far; the builder starts over empty. */
  build(): Table {
    const n = this.length
    const columns: Record<string, Column> = {
      symbol: { type: 'string', values: this.symbols },
      timestamp: { type: 'timestamp', values: this.ts.subarray(0, n) },
    }
    for (let c = 0; c < this.cols.length; c++) columns[this.schema[c + 2].name] = trim(this.cols[c], n)
    const table: Table = { length: n, schema: this.schema, columns }
    this.length = 0
    this.symbols = []
    this.ts = new Float64Array(this.capacity)
    this.cols = this.schema.slice(2).map((c) => uninitializedColumn(c.type, this.capacity))
    return table
  }

  private grow(): void {
    const cap = this.capacity * 2
    const ts = new Float64Array(cap)
    ts.set(this.ts)
    this.ts = ts
    this.cols = this.cols.map((col) => {
      const next = uninitializedColumn(col.type, cap)
      if (next.type === 'string') {
        const old = col.values as (string | null)[]
        for (let i = 0; i < old.length; i++) next.values[i] = old[i]
      } else {
        ;(next.values as Float64Array).set(col.values as Float64Array)
        if (next.type === 'int64') next.nulls!.set((col as Extract<Column, { type: 'int64' }>).nulls!)
      }
      return next
    })
    this.capacity = cap
  }
}

function timeUs(x: unknown): number {
  if (x instanceof Date) return x.getTime() * 1000
  return Number(x) * 1000
}

function trim(col: Column, n: number): Column {
  switch (col.type) {
    case 'float64':
    case 'timestamp':
      return { type: col.type, values: col.values.subarray(0, n) }
    case 'int64':
      return { type: 'int64', values: col.values.subarray(0, n), nulls: col.nulls!.subarray(0, n) }
    case 'boolean':
      return { type: 'boolean', values: col.values.subarray(0, n) }
    case 'string':
      return { type: 'string', values: col.values.length === n ? col.values : col.values.slice(0, n) }
  }
}
