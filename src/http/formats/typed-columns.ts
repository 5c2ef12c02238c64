/**
 * Per-column vectors filled as body rows are read, with no object per row. A column holding only
 * numbers is a growing Float64Array; the first null, gap or other value turns it into a plain
 * array. At the end, a time column (`timestamp`, `datetime`, `date`) whose values are all ISO
 * strings becomes an `EpochMicros` column, so the storage does not parse them again. Each column
 * gets at most one value per row (callers have unique keys: CSV headers, JSON objects).
 */

import { LimitExceededError } from '../../core/errors.js'
import type { InputColumns } from '../../core/types.js'
import { checkRequestColumns, DEFAULT_LIMITS } from '../../table/limits.js'
import { epochMicros } from './time-column.js'

/** The columns the storage reads as the time of a row. */
export const TIME_COLUMNS: ReadonlySet<string> = new Set(['timestamp', 'datetime', 'date'])
/** A numbers column starts this small and doubles: a wide, short body costs little per column. */
const INITIAL_CAPACITY = 16
const TWO_53 = 2 ** 53
/**
 * A body's columns are `rows x columns` cells, the ones it does not set being nulls. Past this
 * many cells, a body must send at least one value per `SPARSE_RATIO` cells: rows of a few keys
 * each naming a new column would otherwise cost rows x columns of memory from a small body.
 */
const SPARSE_MIN_CELLS = 1_000_000
const SPARSE_RATIO = 16

export class TypedColumns {
  /** Rows completed; the row being read is row `length`. */
  length = 0
  private readonly names: string[] = []
  private readonly byName = new Map<string, number>()
  /** Per column: its numbers while it has only numbers, else undefined. */
  private readonly floats: (Float64Array | undefined)[] = []
  /** Per column: its values once it is not all numbers (filled up to its last set row). */
  private readonly values: unknown[][] = []
  /** Per column: the last row that set a value. */
  private readonly setRow: number[] = []
  /** Per column: the row it was first seen on. */
  private readonly bornRow: number[] = []
  /** The columns of the last `addPlainRow` row's keys, by position. */
  private readonly keyColumns: number[] = []
  /** Columns a body may have: one more is a 413 before it is allocated. */
  private readonly maxColumns: number
  /** Values set so far (not counting the nulls implied by keys a row lacks). */
  private explicit = 0

  constructor(maxColumns: number = DEFAULT_LIMITS.maxColumnsPerRequest) {
    this.maxColumns = maxColumns
  }

  /** The column named `name` (created, null in every earlier row, when new). */
  column(name: string): number {
    const known = this.byName.get(name)
    if (known !== undefined) return known
    const c = this.names.length
    checkRequestColumns(c + 1, { maxColumnsPerRequest: this.maxColumns })
    const row = this.length
    this.checkSparse(c + 1, row) // before the new column's nulls for earlier rows are made
    this.names.push(name)
    this.byName.set(name, c)
    this.floats.push(row === 0 ? new Float64Array(INITIAL_CAPACITY) : undefined)
    this.values.push(row === 0 ? [] : new Array(row).fill(null))
    this.setRow.push(row - 1)
    this.bornRow.push(row)
    return c
  }

  /** Sets column `c` of the current row to a number. */
  number(c: number, v: number): void {
    const row = this.length
    const f = this.floats[c]
    if (f === undefined || this.setRow[c] !== row - 1) {
      this.value(c, v) // not (or no longer) numbers only
      return
    }
    this.setRow[c] = row
    this.explicit++
    if (row < f.length) f[row] = v
    else this.grow(c, f)[row] = v
  }

  /** Sets column `c` of the current row to any value. */
  value(c: number, v: unknown): void {
    const row = this.length
    if (this.floats[c] !== undefined) {
      if (typeof v === 'number' && this.setRow[c] === row - 1) {
        this.number(c, v)
        return
      }
      this.toValues(c)
    }
    const values = this.values[c]
    while (values.length < row) values.push(null)
    values.push(v)
    this.setRow[c] = row
    this.explicit++
  }

  /** Completes the current row (columns it did not set are null in it). */
  endRow(): void {
    this.length++
  }

  /**
   * Forgets what the current row set, and drops the columns it created, so the row can be read
   * again another way.
   */
  abortRow(): void {
    const row = this.length
    while (this.names.length > 0 && this.bornRow[this.names.length - 1] === row) {
      this.byName.delete(this.names.pop() as string)
      this.floats.pop()
      this.values.pop()
      this.setRow.pop()
      this.bornRow.pop()
    }
    for (let c = 0; c < this.names.length; c++) {
      if (this.setRow[c] !== row) continue
      this.setRow[c] = row - 1
      if (this.floats[c] === undefined) this.values[c].length = row
    }
  }

  /** A row object, each value through `revive`; keys in `for...in` order. */
  addRow(row: Record<string, unknown>, revive: (v: unknown) => unknown): void {
    for (const key in row) this.value(this.column(key), revive(row[key]))
    this.endRow()
  }

  /**
   * A row object from `JSON.parse` whose values are all strings, booleans, nulls or numbers
   * within ±2^53, which is what `parseJson` would give for its line too. Any other value (a
   * number that may be a rounded big integer literal, a nested value) returns false having set
   * nothing: the caller reads that line the exact, slower way. Keys are matched to columns by
   * their position in the previous such row, without a map lookup.
   */
  addPlainRow(row: Record<string, unknown>): boolean {
    let k = 0
    for (const key in row) {
      let c = this.keyColumns[k]
      if (c === undefined || this.names[c] !== key) {
        c = this.column(key)
        this.keyColumns[k] = c
      }
      const v = row[key]
      if (typeof v === 'number' && Math.abs(v) < TWO_53) this.number(c, v)
      else if (typeof v === 'string' || typeof v === 'boolean' || v === null) this.value(c, v)
      else {
        this.abortRow()
        return false
      }
      k++
    }
    this.endRow()
    return true
  }

  /** The columns, each `length` long; numeric ones as Float64Array, ISO time ones as EpochMicros. */
  finish(): InputColumns {
    const n = this.length
    this.checkSparse(this.names.length, n)
    const entries: [string, ArrayLike<unknown>][] = []
    for (let c = 0; c < this.names.length; c++) {
      const f = this.floats[c]
      if (f !== undefined && this.setRow[c] === n - 1) {
        entries.push([this.names[c], f.subarray(0, n)])
        continue
      }
      if (f !== undefined) this.toValues(c)
      const values = this.values[c]
      while (values.length < n) values.push(null)
      entries.push([this.names[c], (TIME_COLUMNS.has(this.names[c]) && epochMicros(values)) || values])
    }
    return Object.fromEntries(entries) // own properties, even for a column named __proto__
  }

  /** A 413 when `columns x rows` cells would be mostly nulls the body never sent. */
  private checkSparse(columns: number, rows: number): void {
    const cells = columns * rows
    if (cells <= SPARSE_MIN_CELLS || cells <= SPARSE_RATIO * this.explicit) return
    throw new LimitExceededError(
      413,
      'sparse_body',
      SPARSE_RATIO,
      `the body's ${columns} columns x ${rows} rows are ${cells} cells for ${this.explicit} values sent: more than ${SPARSE_RATIO} cells per value (send fewer distinct keys per request)`,
    )
  }

  private grow(c: number, f: Float64Array): Float64Array {
    const bigger = new Float64Array(f.length * 2)
    bigger.set(f)
    this.floats[c] = bigger
    return bigger
  }

  /** Turns a numbers-only column into a plain array of its values so far. */
  private toValues(c: number): void {
    const f = this.floats[c] as Float64Array
    const values = this.values[c]
    for (let i = 0; i <= this.setRow[c]; i++) values.push(f[i])
    this.floats[c] = undefined
  }
}
