/**
 * Per-column vectors filled as body rows are read, with no object per row. A column holding only
 * numbers is a growing Float64Array; the first null, gap or other value turns it into a plain
 * array. Columns are named and read as the `ColumnPlan` says: an epoch number in a time column
 * (`timestamp`, `datetime`, `date`) is turned into exact epoch microseconds in the body's
 * `time_unit` as it arrives (or refused naming row and field), a declared column's values into
 * its type. At the end a time column becomes an `EpochMicros` column (ISO strings parsed once
 * here), so the storage does not parse it again. Each column gets at most one value per row
 * (callers have unique keys: CSV headers, JSON objects).
 */

import { LimitExceededError, ValidationError } from '../core/errors.js'
import { describeValue } from '../core/keys.js'
import { epochNumberToUs, epochToUs, exactUs, MAX_TIME_US, MIN_TIME_US } from '../core/time.js'
import type { InputColumns } from '../core/types.js'
import { checkRequestColumns, DEFAULT_LIMITS } from '../table/limits.js'
import { ColumnPlan, type Special } from './column-options.js'
import { NumberText } from './json-text.js'
import { RowLines, setBodyLines } from './row-lines.js'
import { timeColumn } from './time-column.js'

export { TIME_COLUMNS } from './column-options.js'

/** `text[a, b)` is `-?\d+` (so `Number` of it is exact below 16 digits). */
function isIntegerText(text: string, a: number, b: number): boolean {
  if (text.charCodeAt(a) === 45) a++
  if (a === b) return false
  for (let i = a; i < b; i++) {
    const d = text.charCodeAt(i)
    if (d < 48 || d > 57) return false
  }
  return true
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
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
  /** Stored names (after renames), and the names in the body. */
  private readonly names: string[] = []
  private readonly rawNames: string[] = []
  private readonly byName = new Map<string, number>()
  private readonly byStoredName = new Map<string, number>()
  /** Per column: how its values are read (time unit, declared type), or undefined. */
  private readonly special: (Special | undefined)[] = []
  /** Per special column: `"<name>":` as JSON writes the member (`decimalIn`). */
  private readonly members: (string | undefined)[] = []
  readonly plan: ColumnPlan
  /**
   * The body line of the current row, when the reader knows it (CSV, NDJSON): named in value
   * errors, and noted for the errors the storage finds later (`withBodyLines`).
   */
  line: number | undefined
  private readonly rowLines = new RowLines()
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

  constructor(maxColumns: number = DEFAULT_LIMITS.maxColumnsPerRequest, plan: ColumnPlan = new ColumnPlan()) {
    this.maxColumns = maxColumns
    this.plan = plan
  }

  /** The column the body names `name` (created, null in every earlier row, when new). */
  column(name: string): number {
    const known = this.byName.get(name)
    if (known !== undefined) return known
    const c = this.names.length
    checkRequestColumns(c + 1, { maxColumnsPerRequest: this.maxColumns })
    const stored = this.plan.nameOf(name)
    const clash = this.byStoredName.get(stored)
    if (clash !== undefined) {
      const message = `columns '${this.rawNames[clash]}' and '${name}' would both be stored as '${stored}' (rename)`
      throw new ValidationError([{ field: stored, message }])
    }
    if (stored === 'symbol' && this.plan.symbol !== undefined) {
      const message = `the body has a symbol column ('${name}'): a symbol for every row is only for bodies without one`
      throw new ValidationError([{ field: 'symbol', message }])
    }
    const row = this.length
    this.checkSparse(c + 1, row) // before the new column's nulls for earlier rows are made
    this.names.push(stored)
    this.rawNames.push(name)
    this.byName.set(name, c)
    this.byStoredName.set(stored, c)
    this.special.push(this.plan.specialOf(stored))
    this.floats.push(row === 0 ? new Float64Array(INITIAL_CAPACITY) : undefined)
    this.values.push(row === 0 ? [] : new Array(row).fill(null))
    this.setRow.push(row - 1)
    this.bornRow.push(row)
    return c
  }

  /** The stored name of column `c`. */
  nameAt(c: number): string {
    return this.names[c]
  }

  /** How the values of column `c` are read (time, a declared type), or undefined. */
  specialAt(c: number): Special | undefined {
    return this.special[c]
  }

  /** Sets column `c` of the current row to a number. */
  number(c: number, v: number): void {
    const special = this.special[c]
    if (special === undefined) this.putNumber(c, v)
    else if (special === 'time') {
      // the common case inline: an integer below 1e15 in s, ms or us, in range and plausible
      const plan = this.plan
      const us = v * plan.usPerUnit
      if (v < 1e15 && v > -1e15 && Number.isSafeInteger(us) && us >= MIN_TIME_US && us < MAX_TIME_US) {
        if (us >= plan.plausibleUs || us <= -plan.plausibleUs) {
          this.putNumber(c, us === 0 ? 0 : us)
          return
        }
      }
      this.put(c, this.convert(c, v))
    } else this.put(c, this.convert(c, v))
  }

  /** Sets column `c` of the current row to any value. */
  value(c: number, v: unknown): void {
    const special = this.special[c]
    if (typeof v === 'object' && v instanceof NumberText) v = special === undefined ? Number(v.text) : this.fromText(c, v.text)
    else if (special !== undefined && !(typeof v === 'string' && (special === 'time' || special === 'string')))
      v = this.convert(c, v)
    if (typeof v === 'number') this.putNumber(c, v)
    else this.putValue(c, v)
  }

  /**
   * Sets column `c` of the current row to the number `n` written as `text[a, b)` (a CSV cell),
   * read exactly: an integer cell of at most 15 digits is exact as `n`, any other goes by its text.
   */
  numberText(c: number, text: string, a: number, b: number, n: number): void {
    const special = this.special[c]
    if (special === undefined) this.putNumber(c, n)
    else if (special === 'time' && b - a <= 16 && isIntegerText(text, a, b)) {
      const us = epochNumberToUs(n, this.plan.timeUnit, this.plan.unitGiven)
      if (typeof us === 'number') this.putNumber(c, us)
      else this.refuse(c, us)
    } else this.put(c, this.fromText(c, text.slice(a, b)))
  }

  private put(c: number, v: unknown): void {
    if (typeof v === 'number') this.putNumber(c, v)
    else this.putValue(c, v)
  }

  /** A value of a time or declared column, converted (a string in a time column stays: ISO, read at the end). */
  private convert(c: number, v: unknown): unknown {
    if (v === null || v === undefined) return v
    switch (this.special[c]) {
      case 'time':
        if (typeof v === 'number') {
          if (!Number.isFinite(v)) return v
          const us = epochNumberToUs(v, this.plan.timeUnit, this.plan.unitGiven)
          return typeof us === 'number' ? us : this.refuse(c, us)
        }
        return typeof v === 'bigint' ? this.fromText(c, String(v)) : v
      case 'int64':
        if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v)
        if (typeof v === 'bigint' || typeof v === 'number') return this.fromText(c, String(v))
        break
      case 'float64':
        if (typeof v === 'number') return v
        if (typeof v === 'bigint') return this.fromText(c, String(v))
        break
      case 'string':
        if (typeof v === 'string') return v
        break
      case 'boolean':
        if (typeof v === 'boolean') return v
        break
    }
    return this.refuse(c, `expected ${this.special[c]} (declared), got ${describeValue(v)}`)
  }

  /** A number written as `text` in a time or declared column: exact, or a `ValidationError` naming row and field. */
  private fromText(c: number, text: string): unknown {
    switch (this.special[c]) {
      case 'time': {
        const us = epochToUs(text, this.plan.timeUnit, this.plan.unitGiven)
        return typeof us === 'number' ? us : this.refuse(c, us)
      }
      case 'int64': {
        const v = exactUs(text, 'us')
        if (v === 'fraction' || v === null) return this.refuse(c, `expected an integer (declared int64), got ${text}`)
        if (v === 'huge' || v < INT64_MIN || v > INT64_MAX)
          return this.refuse(c, `${text} is outside the int64 range (declared int64)`)
        return v
      }
      case 'float64': {
        const v = Number(text)
        if (/^[+-]?\d+$/.test(text) && BigInt(text) !== BigInt(v))
          return this.refuse(c, `${text} has more digits than a float64 holds (declared float64): it cannot be stored exactly`)
        return v
      }
      case 'string':
        return text
      default:
        return this.refuse(c, `expected ${this.special[c]} (declared), got ${text}`)
    }
  }

  private refuse(c: number, message: string): never {
    const issue = { row: this.length, field: this.names[c], message }
    throw new ValidationError([this.line === undefined ? issue : { ...issue, line: this.line }])
  }

  /** Sets column `c` of the current row to a number (no conversion). */
  private putNumber(c: number, v: number): void {
    const row = this.length
    const f = this.floats[c]
    if (f === undefined || this.setRow[c] !== row - 1) {
      this.putValue(c, v) // not (or no longer) numbers only
      return
    }
    this.setRow[c] = row
    this.explicit++
    if (row < f.length) f[row] = v
    else this.grow(c, f)[row] = v
  }

  /** Sets column `c` of the current row to any value (no conversion). */
  private putValue(c: number, v: unknown): void {
    const row = this.length
    if (this.floats[c] !== undefined) {
      if (typeof v === 'number' && this.setRow[c] === row - 1) {
        this.putNumber(c, v)
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
    if (this.line !== undefined) this.rowLines.note(this.length, this.line)
    this.length++
  }

  /**
   * Forgets what the current row set, and drops the columns it created, so the row can be read
   * again another way.
   */
  abortRow(): void {
    const row = this.length
    while (this.names.length > 0 && this.bornRow[this.names.length - 1] === row) {
      this.byStoredName.delete(this.names.pop() as string)
      this.byName.delete(this.rawNames.pop() as string)
      this.special.pop()
      this.members.length = Math.min(this.members.length, this.names.length)
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
   * nothing: the caller reads that line the exact, slower way. So does a number in a time or
   * int64 column written (in `raw`, the row's text) with a fraction or an exponent: its double
   * may not be the number written. Keys are matched to columns by their position in the
   * previous such row, without a map lookup.
   */
  addPlainRow(row: Record<string, unknown>, raw: string): boolean {
    let k = 0
    for (const key in row) {
      let c = this.keyColumns[k]
      if (c === undefined || this.rawNames[c] !== key) {
        c = this.column(key)
        this.keyColumns[k] = c
      }
      const v = row[key]
      if (typeof v === 'number' && Math.abs(v) < TWO_53) {
        if (this.special[c] !== undefined && this.decimalIn(raw, c)) {
          this.abortRow()
          return false
        }
        this.number(c, v)
      } else if (typeof v === 'string' || typeof v === 'boolean' || v === null) this.value(c, v)
      else {
        this.abortRow()
        return false
      }
      k++
    }
    this.endRow()
    return true
  }

  /**
   * The columns, each `length` long, under their stored names: numeric ones as Float64Array,
   * time ones as EpochMicros (or, with a null or a value that is not a time, a plain array the
   * storage checks row by row), plus a `symbol` column when the plan gives one symbol. With
   * `line` set per row, the columns are registered with their rows' lines (`withBodyLines`).
   */
  finish(): InputColumns {
    const n = this.length
    this.checkSparse(this.names.length, n)
    const entries: [string, ArrayLike<unknown>][] = []
    for (let c = 0; c < this.names.length; c++) {
      const f = this.floats[c]
      const time = this.special[c] === 'time'
      if (f !== undefined && this.setRow[c] === n - 1) {
        entries.push([this.names[c], time ? timeColumn(f.subarray(0, n)) : f.subarray(0, n)])
        continue
      }
      if (f !== undefined) this.toValues(c)
      const values = this.values[c]
      while (values.length < n) values.push(null)
      entries.push([this.names[c], time ? timeColumn(values) : values])
    }
    if (this.plan.symbol !== undefined && n > 0) entries.push(['symbol', new Array<string>(n).fill(this.plan.symbol)])
    const columns: InputColumns = Object.fromEntries(entries) // own properties, even for a column named __proto__
    if (this.rowLines.rows > 0) setBodyLines(columns, this.rowLines)
    return columns
  }

  /**
   * Whether column `c`'s number in the row text `raw` is written with a fraction or an exponent.
   * Found without a regex in the usual layout (`"timestamp":1709...`): the first occurrence of
   * the member is the row's own (a quote inside a string is escaped; a nested object makes the
   * row not plain anyway); another layout asks `needsExactNumbers`.
   */
  private decimalIn(raw: string, c: number): boolean {
    let member = this.members[c]
    if (member === undefined) {
      member = `${JSON.stringify(this.rawNames[c])}:`
      this.members[c] = member
    }
    const at = raw.indexOf(member)
    if (at < 0) return this.needsExactNumbers(raw)
    let i = at + member.length
    let ch = raw.charCodeAt(i)
    while (ch === 32 || ch === 9 || ch === 10 || ch === 13) ch = raw.charCodeAt(++i)
    if (ch === 45 /* - */) ch = raw.charCodeAt(++i)
    while (ch >= 48 && ch <= 57) ch = raw.charCodeAt(++i)
    return ch === 46 /* . */ || ch === 101 /* e */ || ch === 69 /* E */
  }

  /**
   * Whether the JSON text `raw` (a row, or a whole body) must be parsed keeping the text of its
   * numbers: it has a number with a fraction or an exponent under a time or int64 key, whose
   * double may not be the number written.
   */
  needsExactNumbers(raw: string): boolean {
    return this.plan.exactNumberRe?.test(raw) === true
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
